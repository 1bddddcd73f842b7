//! Adapter tests of the token endpoint through Rocket: statuses, JSON bodies, headers,
//! HTTP Basic parsing, methods, body limits.

mod common;

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::rocket::OAuth2;

fn figment_with(mut cfg: twisted_oauth2::ServerConfig) -> rocket::figment::Figment {
    cfg.trusted_proxy_header = Some("X-Forwarded-Proto".into());
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg))
}

fn figment() -> rocket::figment::Figment {
    figment_with(common::config())
}

async fn client_with(figment: rocket::figment::Figment) -> Client {
    let rocket = rocket::custom(figment).attach(
        OAuth2::fairing()
            .clock(Arc::new(FixedClock::at(common::T0)))
            .on_authenticate(common::NoConsent),
    );
    Client::untracked(rocket).await.expect("valid rocket")
}

async fn client() -> Client {
    client_with(figment()).await
}

async fn post<'c>(c: &'c Client, body: &str, auth: Option<String>) -> LocalResponse<'c> {
    let mut req = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .body(body);
    if let Some(a) = auth {
        req = req.header(Header::new("Authorization", a));
    }
    req.dispatch().await
}

async fn json(r: LocalResponse<'_>) -> serde_json::Value {
    serde_json::from_str(&r.into_string().await.unwrap_or_default()).expect("JSON body")
}

fn assert_no_store(r: &LocalResponse<'_>) {
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    assert_eq!(r.headers().get_one("Pragma"), Some("no-cache"));
}

#[rocket::async_test]
async fn success_is_200_json_with_no_store_rfc6749_5_1() {
    let c = client().await;
    let r = post(
        &c,
        "grant_type=client_credentials&scope=a",
        Some(common::basic("svc", "svc-secret")),
    )
    .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.content_type(), Some(ContentType::JSON));
    assert_no_store(&r);
    let v = json(r).await;
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], "a");
    assert!(v["access_token"].as_str().unwrap().len() >= 43);
    assert!(v.get("refresh_token").is_none());
}

#[rocket::async_test]
async fn errors_are_400_json_with_no_store_rfc6749_5_2() {
    let c = client().await;
    let r = post(
        &c,
        "grant_type=nope",
        Some(common::basic("svc", "svc-secret")),
    )
    .await;
    assert_eq!(r.status(), Status::BadRequest);
    assert_no_store(&r);
    let v = json(r).await;
    assert_eq!(v["error"], "unsupported_grant_type");
    assert!(v["error_description"].is_string());
}

#[rocket::async_test]
async fn failed_basic_auth_is_401_with_basic_challenge() {
    let c = client().await;
    let r = post(
        &c,
        "grant_type=client_credentials&scope=a",
        Some(common::basic("svc", "wrong")),
    )
    .await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(
        r.headers().get_one("WWW-Authenticate"),
        Some("Basic realm=\"twisted-oauth2\"")
    );
    assert_no_store(&r);
    assert_eq!(json(r).await["error"], "invalid_client");
    let r = post(
        &c,
        "grant_type=client_credentials&scope=a&client_id=svc&client_secret=wrong",
        None,
    )
    .await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(
        r.headers().get_one("WWW-Authenticate"),
        Some("Basic realm=\"twisted-oauth2\""),
        "Basic was not tried, yet a 401 always names a scheme (RFC 9110 section 15.5.2)"
    );
}

#[rocket::async_test]
async fn basic_with_percent_encoded_id_and_secret() {
    let mut cfg = common::config();
    cfg.clients.push(common::client(
        "id:with spaces",
        Some("s%cr:t"),
        &["client_credentials"],
        &["a"],
    ));
    let c = client_with(figment_with(cfg)).await;
    let header = format!("Basic {}", STANDARD.encode("id%3Awith+spaces:s%25cr%3At"));
    let r = post(&c, "grant_type=client_credentials&scope=a", Some(header)).await;
    assert_eq!(r.status(), Status::Ok);
    let header = format!("Basic {}", STANDARD.encode("id:with spaces:s%cr:t"));
    let r = post(&c, "grant_type=client_credentials&scope=a", Some(header)).await;
    assert_eq!(
        r.status(),
        Status::Unauthorized,
        "raw ':' in the id is not the encoded id"
    );
}

#[rocket::async_test]
async fn wrong_content_type_is_invalid_request() {
    let c = client().await;
    let r = c
        .post("/oauth2/token")
        .header(ContentType::JSON)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new(
            "Authorization",
            common::basic("svc", "svc-secret"),
        ))
        .body(r#"{"grant_type":"client_credentials"}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
    assert_eq!(json(r).await["error"], "invalid_request");
}

#[rocket::async_test]
async fn duplicate_and_malformed_parameters_are_invalid_request() {
    let c = client().await;
    for body in [
        "grant_type=client_credentials&grant_type=client_credentials",
        "grant_type=client_credentials&scope=%E2%28",
        "grant_type=client_credentials&scope=%G1",
    ] {
        let r = post(&c, body, Some(common::basic("svc", "svc-secret"))).await;
        assert_eq!(r.status(), Status::BadRequest, "{body}");
        assert_eq!(json(r).await["error"], "invalid_request");
    }
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new(
            "Authorization",
            common::basic("svc", "svc-secret"),
        ))
        .body(&b"grant_type=client_credentials&scope=\xff\xfe"[..])
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
}

#[rocket::async_test]
async fn oversize_body_is_413() {
    let c = client().await;
    let body = format!(
        "grant_type=client_credentials&scope=a&pad={}",
        "x".repeat(20_000)
    );
    let r = post(&c, &body, Some(common::basic("svc", "svc-secret"))).await;
    assert_eq!(r.status(), Status::PayloadTooLarge);
    assert_no_store(&r);
    assert_eq!(json(r).await["error"], "invalid_request");
}

#[rocket::async_test]
async fn other_methods_are_405_with_allow_post() {
    let c = client().await;
    for r in [
        c.get("/oauth2/token").dispatch().await,
        c.put("/oauth2/token").dispatch().await,
        c.delete("/oauth2/token").dispatch().await,
    ] {
        assert_eq!(r.status(), Status::MethodNotAllowed);
        assert_eq!(r.headers().get_one("Allow"), Some("POST"));
    }
}

#[rocket::async_test]
async fn plain_http_is_refused_unless_proxy_says_https_or_debug() {
    let c = client().await;
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new(
            "Authorization",
            common::basic("svc", "svc-secret"),
        ))
        .body("grant_type=client_credentials&scope=a")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
    let v = json(r).await;
    assert_eq!(v["error"], "invalid_request");
    assert_eq!(
        v["error_description"],
        "OAuth 2.0 requires requests over HTTPS"
    );
    let c = client_with(figment().merge(("oauth2.allow_insecure_request_debug", true))).await;
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new(
            "Authorization",
            common::basic("svc", "svc-secret"),
        ))
        .body("grant_type=client_credentials&scope=a")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
}

#[rocket::async_test]
async fn credentials_in_query_are_refused() {
    let c = client().await;
    let r = c
        .post("/oauth2/token?client_id=svc&client_secret=svc-secret")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .body("grant_type=client_credentials&scope=a")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
}

#[rocket::async_test]
async fn invalid_config_aborts_launch() {
    let bad = figment().merge(("oauth2.default_scope", "a  b"));
    let rocket = rocket::custom(bad).attach(OAuth2::fairing());
    let e = Client::untracked(rocket).await.expect_err("launch aborted");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    let unknown_key = figment().merge(("oauth2.acess_token_lifetime", 5));
    let rocket = rocket::custom(unknown_key).attach(OAuth2::fairing());
    let e = Client::untracked(rocket)
        .await
        .expect_err("typos in config keys are refused");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
}

#[rocket::async_test]
async fn base_path_is_configurable() {
    let c = client_with(figment().merge(("oauth2.base_path", "/auth/v1"))).await;
    let r = c
        .post("/auth/v1/token")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new(
            "Authorization",
            common::basic("svc", "svc-secret"),
        ))
        .body("grant_type=client_credentials&scope=a")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
}

async fn post_to<'c>(c: &'c Client, path: &str, body: &str) -> LocalResponse<'c> {
    c.post(path.to_owned())
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .body(body)
        .dispatch()
        .await
}

#[rocket::async_test]
async fn every_form_endpoint_caps_the_query_with_414_and_the_parameter_count_with_400() {
    let c = client().await;
    let long = format!("?pad={}", "x".repeat(8 * 1024));
    let many: String = (0..65).map(|i| format!("p{i}=1&")).collect();
    for ep in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        let r = post_to(&c, &format!("{ep}{long}"), "grant_type=client_credentials").await;
        assert_eq!(r.status(), Status::UriTooLong, "{ep}");
        assert_no_store(&r);
        let v = json(r).await;
        assert_eq!(v["error"], "invalid_request", "{ep}");
        assert!(
            v["error_description"].as_str().unwrap().contains("8192"),
            "{ep}"
        );
        let r = post_to(&c, &format!("{ep}?{many}"), "grant_type=client_credentials").await;
        assert_eq!(r.status(), Status::BadRequest, "{ep} query");
        assert_eq!(json(r).await["error"], "invalid_request");
        let r = post_to(&c, ep, &many).await;
        assert_eq!(r.status(), Status::BadRequest, "{ep} body");
        let v = json(r).await;
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("too many parameters"),
            "{ep}: {v}"
        );
    }
}

#[rocket::async_test]
async fn a_401_without_credentials_carries_a_basic_challenge_rfc9110_15_5_2() {
    let c = client().await;
    for (ep, body) in [
        ("/oauth2/token", "grant_type=client_credentials"),
        ("/oauth2/revoke", "token=abc"),
        ("/oauth2/introspect", "token=abc"),
        (
            "/oauth2/token",
            "grant_type=client_credentials&client_id=svc&client_secret=no",
        ),
        ("/oauth2/revoke", "token=abc&client_id=svc&client_secret=no"),
    ] {
        let r = post_to(&c, ep, body).await;
        assert_eq!(r.status(), Status::Unauthorized, "{ep} {body}");
        assert_eq!(
            r.headers().get_one("WWW-Authenticate"),
            Some("Basic realm=\"twisted-oauth2\""),
            "{ep} {body}"
        );
        assert_eq!(json(r).await["error"], "invalid_client");
    }
}
