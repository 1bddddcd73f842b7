//! Dynamic client registration (RFC 7591) and management (RFC 7592): protocol tests of
//! `endpoint::register` per clause, and adapter tests through Rocket.

mod common;

use std::sync::Arc;

use rocket::form::Form;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::Client as LocalClient;
use rocket::request::Request;
use rocket::response::content::RawHtml;
use rocket::{post, routes};
use serde_json::{json, Value};
use twisted_oauth2::client::SecretDigest;
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::config::ServerConfig;
use twisted_oauth2::endpoint::authorize::PendingAuthorization;
use twisted_oauth2::endpoint::register::{self, RegistrationConfig, RegistrationRequest};
use twisted_oauth2::endpoint::Transport;
use twisted_oauth2::pkce::s256_challenge;
use twisted_oauth2::rocket::PendingRequests;
use twisted_oauth2::rocket::{AuthorizeReply, Consent, DecisionForm, OAuth2, OnAuthenticate};
use twisted_oauth2::{ErrorCode, OAuthError};

const SECURE: Transport = Transport { secure: true };
const LOOPBACK: &str = "http://127.0.0.1/callback";

fn cfg_with(reg: RegistrationConfig) -> ServerConfig {
    ServerConfig {
        registration: reg,
        ..common::config()
    }
}

fn open() -> RegistrationConfig {
    RegistrationConfig {
        enabled: true,
        rate_limit_per_minute: 0,
        ..Default::default()
    }
}

fn req(body: &[u8]) -> RegistrationRequest<'_> {
    RegistrationRequest {
        body,
        content_type: Some("application/json"),
        transport: SECURE,
        ..Default::default()
    }
}

async fn reg(f: &common::Fixture, body: Value) -> Result<Value, OAuthError> {
    let b = body.to_string();
    register::register(&f.server, req(b.as_bytes()))
        .await
        .map(|i| serde_json::from_str(&i.to_json()).unwrap())
}

fn assert_no_nulls(v: &Value) {
    for (k, m) in v.as_object().unwrap() {
        assert!(!m.is_null(), "member `{k}` is null");
    }
}

#[tokio::test]
async fn defaults_public_client_no_secret_rfc7591_2() {
    let f = common::fixture_with(cfg_with(open()));
    let v = reg(&f, json!({"redirect_uris": [LOOPBACK]})).await.unwrap();
    assert_no_nulls(&v);
    assert_eq!(v["token_endpoint_auth_method"], "none");
    assert_eq!(v["grant_types"], json!(["authorization_code"]));
    assert_eq!(v["response_types"], json!(["code"]));
    assert_eq!(v["redirect_uris"], json!([LOOPBACK]));
    assert_eq!(v["client_id_issued_at"], common::T0);
    assert!(v.get("client_secret").is_none());
    assert!(v.get("client_secret_expires_at").is_none());
    assert!(v.get("scope").is_none() && v.get("client_name").is_none());
    let id = v["client_id"].as_str().unwrap();
    assert_eq!(
        v["registration_client_uri"],
        format!("https://as.example/oauth2/register/{id}")
    );
    assert!(!v["registration_access_token"].as_str().unwrap().is_empty());
    let c = f.server.client(id).await.unwrap().unwrap();
    assert!(!c.is_verified(), "registered clients are unverified");
    assert!(c.is_public());
    assert_eq!(c.expires_at(), Some(common::T0 + 86_400));
}

#[tokio::test]
async fn secret_only_for_client_secret_methods_rfc7591_3_2_1() {
    let f = common::fixture_with(cfg_with(open()));
    for m in ["client_secret_basic", "client_secret_post"] {
        let v = reg(
            &f,
            json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": m,
                   "grant_types": ["authorization_code", "refresh_token"], "client_name": "Notes App",
                   "scope": "a b"}),
        )
        .await
        .unwrap();
        assert_no_nulls(&v);
        assert_eq!(v["token_endpoint_auth_method"], m);
        assert_eq!(v["client_secret_expires_at"], 0);
        assert_eq!(v["client_name"], "Notes App");
        assert_eq!(v["scope"], "a b");
        assert_eq!(
            v["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        let c = f
            .server
            .client(v["client_id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(c.verify_secret(v["client_secret"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn unknown_members_are_ignored_and_nulls_are_absent_rfc7591_3_1() {
    let f = common::fixture_with(cfg_with(open()));
    let v = reg(
        &f,
        json!({"redirect_uris": [LOOPBACK], "software_id": "x", "frobnicate": {"a": 1},
               "client_name": null, "scope": null}),
    )
    .await
    .unwrap();
    assert_no_nulls(&v);
    assert!(v.get("software_id").is_none() && v.get("frobnicate").is_none());
}

#[tokio::test]
async fn each_bad_field_is_refused_rfc7591_3_2_2() {
    let f = common::fixture_with(cfg_with(open()));
    let redirect = ErrorCode::INVALID_REDIRECT_URI;
    let meta = ErrorCode::INVALID_CLIENT_METADATA;
    let cases: Vec<(Value, ErrorCode)> = vec![
        (json!({}), redirect),
        (json!({"redirect_uris": []}), redirect),
        (json!({"redirect_uris": "https://app.example/cb"}), redirect),
        (
            json!({"redirect_uris": ["https://app.example/cb#x"]}),
            redirect,
        ),
        (json!({"redirect_uris": ["/relative"]}), redirect),
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            redirect,
        ),
        (json!({"redirect_uris": ["http://localhost/cb"]}), redirect),
        (json!({"redirect_uris": ["javascript:alert(1)"]}), redirect),
        (
            json!({"redirect_uris": [format!("https://a.example/{}", "x".repeat(3000))]}),
            redirect,
        ),
        (
            json!({"redirect_uris": [LOOPBACK], "token_endpoint_auth_method": "private_key_jwt"}),
            meta,
        ),
        (
            json!({"redirect_uris": [LOOPBACK], "token_endpoint_auth_method": 3}),
            meta,
        ),
        (
            json!({"redirect_uris": [LOOPBACK], "grant_types": ["password"]}),
            meta,
        ),
        (
            json!({"redirect_uris": [LOOPBACK], "grant_types": ["urn:x:unknown"]}),
            meta,
        ),
        (
            json!({"redirect_uris": [LOOPBACK], "grant_types": ["client_credentials"]}),
            meta,
        ),
        (
            json!({"redirect_uris": [LOOPBACK], "response_types": ["token"]}),
            meta,
        ),
        (
            json!({"redirect_uris": [LOOPBACK], "response_types": []}),
            meta,
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic", "response_types": ["code"]}),
            meta,
        ),
        (json!({"redirect_uris": [LOOPBACK], "scope": "a  b"}), meta),
        (
            json!({"redirect_uris": [LOOPBACK], "scope": "bad\"scope"}),
            meta,
        ),
        (json!({"redirect_uris": [LOOPBACK], "scope": 7}), meta),
        (
            json!({"redirect_uris": [LOOPBACK], "client_name": ""}),
            meta,
        ),
        (
            json!({"redirect_uris": [LOOPBACK], "client_name": "x".repeat(300)}),
            meta,
        ),
        (json!([1, 2]), meta),
    ];
    for (body, code) in cases {
        let e = reg(&f, body.clone()).await.unwrap_err();
        assert_eq!(e.code(), code, "{body}");
        assert_eq!(e.status(), 400, "{body}");
    }
    let e = register::register(&f.server, req(b"{not json"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), meta);
    let mut form = req(b"{}");
    form.content_type = Some("application/x-www-form-urlencoded");
    let e = register::register(&f.server, form).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn grant_types_the_server_does_not_enable_are_refused() {
    let cfg = ServerConfig {
        grant_types: vec!["authorization_code".into()],
        ..cfg_with(open())
    };
    let f = common::fixture_with(cfg);
    let e = reg(
        &f,
        json!({"redirect_uris": [LOOPBACK], "grant_types": ["authorization_code", "refresh_token"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::INVALID_CLIENT_METADATA);
}

#[tokio::test]
async fn redirect_kinds_follow_the_policy() {
    let f = common::fixture_with(cfg_with(open()));
    for ok in [
        "http://127.0.0.1:33418/cb",
        "http://[::1]/cb",
        "https://app.example/cb",
        "com.example.app:/cb",
    ] {
        reg(&f, json!({"redirect_uris": [ok]})).await.unwrap();
    }
    let f = common::fixture_with(cfg_with(RegistrationConfig {
        allow_localhost: true,
        allow_https: false,
        allow_private_use_schemes: false,
        ..open()
    }));
    reg(&f, json!({"redirect_uris": ["http://localhost/callback"]}))
        .await
        .unwrap();
    for bad in ["https://app.example/cb", "com.example.app:/cb"] {
        let e = reg(&f, json!({"redirect_uris": [bad]})).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_REDIRECT_URI, "{bad}");
    }
}

#[tokio::test]
async fn registered_scope_does_not_restrict_unless_configured() {
    let f = common::fixture_with(cfg_with(open()));
    let v = reg(&f, json!({"redirect_uris": [LOOPBACK], "scope": "a"}))
        .await
        .unwrap();
    let c = f
        .server
        .client(v["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(c.allowed_scopes().is_none(), "step-up stays possible");
    let f = common::fixture_with(cfg_with(RegistrationConfig {
        restrict_scope: true,
        ..open()
    }));
    let v = reg(&f, json!({"redirect_uris": [LOOPBACK], "scope": "a"}))
        .await
        .unwrap();
    let c = f
        .server
        .client(v["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.allowed_scopes().map(|s| s.to_string()).as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn disabled_registration_is_refused() {
    let f = common::fixture();
    let e = reg(&f, json!({"redirect_uris": [LOOPBACK]}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
}

#[tokio::test]
async fn initial_access_token_is_required_when_configured_rfc7591_3() {
    let f = common::fixture_with(cfg_with(RegistrationConfig {
        initial_access_token_sha256: Some(SecretDigest::of("let-me-in").to_hex()),
        ..open()
    }));
    let body = json!({"redirect_uris": [LOOPBACK]}).to_string();
    for auth in [None, Some("Bearer wrong"), Some("Basic bGV0LW1lLWlu")] {
        let mut r = req(body.as_bytes());
        r.authorization = auth;
        let e = register::register(&f.server, r).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidToken, "{auth:?}");
        assert_eq!(e.status(), 401);
        assert!(e.www_authenticate("r", None).unwrap().starts_with("Bearer"));
    }
    let mut r = req(body.as_bytes());
    r.authorization = Some("Bearer let-me-in");
    register::register(&f.server, r).await.unwrap();
}

#[tokio::test]
async fn rate_limit_is_per_ip_and_answers_429_with_retry_after() {
    let f = common::fixture_with(cfg_with(RegistrationConfig {
        rate_limit_per_minute: 2,
        ..open()
    }));
    let body = json!({"redirect_uris": [LOOPBACK]}).to_string();
    let at = |ip: &str| {
        let mut r = req(body.as_bytes());
        r.client_ip = Some(ip.parse().unwrap());
        r
    };
    register::register(&f.server, at("192.0.2.1"))
        .await
        .unwrap();
    register::register(&f.server, at("192.0.2.1"))
        .await
        .unwrap();
    let e = register::register(&f.server, at("192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 429);
    let retry: u64 = e
        .headers()
        .find(|(n, _)| n.eq_ignore_ascii_case("Retry-After"))
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    register::register(&f.server, at("192.0.2.2"))
        .await
        .unwrap();
    // IPv6: one bucket per /64.
    register::register(&f.server, at("2001:db8::1"))
        .await
        .unwrap();
    register::register(&f.server, at("2001:db8::2"))
        .await
        .unwrap();
    let e = register::register(&f.server, at("2001:db8::ffff:3"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 429, "same /64");
    register::register(&f.server, at("2001:db8:0:1::1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn rate_limiter_memory_is_bounded() {
    let f = common::fixture_with(cfg_with(RegistrationConfig {
        rate_limit_per_minute: 5,
        rate_limit_max_ips: 3,
        ..open()
    }));
    let body = json!({"redirect_uris": [LOOPBACK]}).to_string();
    let mut refused = 0;
    for i in 0..200u8 {
        let mut r = req(body.as_bytes());
        let ip = format!("198.51.100.{i}");
        r.client_ip = Some(ip.parse().unwrap());
        if register::register(&f.server, r).await.is_err() {
            refused += 1;
        }
    }
    // Three addresses get their own bucket; the table is then full and the rest of the
    // /24 shares one bucket of four times the burst (20).
    assert_eq!(refused, 200 - 3 - 20, "the flood's prefix is limited");
    // An address elsewhere is not refused because the table is full.
    let mut r = req(body.as_bytes());
    r.client_ip = Some("203.0.113.9".parse().unwrap());
    assert!(register::register(&f.server, r).await.is_ok());
}

async fn registered(f: &common::Fixture, body: Value) -> (String, String) {
    let v = reg(f, body).await.unwrap();
    (
        v["client_id"].as_str().unwrap().to_owned(),
        v["registration_access_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn management_needs_the_registration_access_token_rfc7592_2() {
    let f = common::fixture_with(cfg_with(open()));
    let (id, token) = registered(&f, json!({"redirect_uris": [LOOPBACK]})).await;
    let (other, _) = registered(&f, json!({"redirect_uris": [LOOPBACK]})).await;
    let bearer = format!("Bearer {token}");
    let with = |auth: Option<&'static str>| RegistrationRequest {
        authorization: auth,
        transport: SECURE,
        ..Default::default()
    };
    for auth in [None, Some("Bearer nope")] {
        let e = register::read(&f.server, &id, with(auth))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 401, "{auth:?}");
        assert!(e.www_authenticate("r", None).unwrap().starts_with("Bearer"));
    }
    let mut r = with(None);
    r.authorization = Some(&bearer);
    let e = register::read(&f.server, &other, r).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidToken, "another client's token");
    let e = register::read(&f.server, "web", r).await.unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidToken,
        "configured clients are not managed"
    );
    let v: Value =
        serde_json::from_str(&register::read(&f.server, &id, r).await.unwrap().to_json()).unwrap();
    assert_no_nulls(&v);
    assert_eq!(v["client_id"], id.as_str());
    assert!(v.get("registration_access_token").is_none());

    // PUT replaces the metadata, validated as at registration.
    let body = json!({"client_id": id, "redirect_uris": ["https://new.example/cb"],
                      "client_name": "Renamed"})
    .to_string();
    let mut put = req(body.as_bytes());
    put.authorization = Some(&bearer);
    let v: Value = serde_json::from_str(
        &register::update(&f.server, &id, put)
            .await
            .unwrap()
            .to_json(),
    )
    .unwrap();
    assert_eq!(v["redirect_uris"], json!(["https://new.example/cb"]));
    assert_eq!(v["client_name"], "Renamed");
    // The registration access token rotated (RFC 7592 §3): the old one is spent.
    let old_r = r;
    assert_eq!(
        register::read(&f.server, &id, old_r)
            .await
            .unwrap_err()
            .status(),
        401
    );
    let bearer = format!(
        "Bearer {}",
        v["registration_access_token"]
            .as_str()
            .expect("rotated token")
    );
    let mut r = with(None);
    r.authorization = Some(&bearer);
    let c = f.server.client(&id).await.unwrap().unwrap();
    assert_eq!(c.name(), "Renamed");
    let bad = json!({"redirect_uris": ["http://evil.example/cb"]}).to_string();
    let mut put = req(bad.as_bytes());
    put.authorization = Some(&bearer);
    let e = register::update(&f.server, &id, put).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::INVALID_REDIRECT_URI);
    let wrong = json!({"client_id": "x", "redirect_uris": [LOOPBACK]}).to_string();
    let mut put = req(wrong.as_bytes());
    put.authorization = Some(&bearer);
    assert_eq!(
        register::update(&f.server, &id, put)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidRequest
    );

    // DELETE removes it; the token no longer works.
    register::delete(&f.server, &id, r).await.unwrap();
    assert!(f.server.client(&id).await.unwrap().is_none());
    assert_eq!(
        register::read(&f.server, &id, r)
            .await
            .unwrap_err()
            .status(),
        401
    );
}

#[tokio::test]
async fn failed_registration_access_token_checks_are_limited_per_client_id_rfc7592_2() {
    let mut cfg = cfg_with(open());
    cfg.limits.client_auth_failures = 3;
    let f = common::fixture_with(cfg);
    let (id, token) = registered(&f, json!({"redirect_uris": [LOOPBACK]})).await;
    let (other, other_token) = registered(&f, json!({"redirect_uris": [LOOPBACK]})).await;
    fn with(auth: &str) -> RegistrationRequest<'_> {
        RegistrationRequest {
            authorization: Some(auth),
            transport: SECURE,
            ..Default::default()
        }
    }
    for _ in 0..3 {
        let e = register::read(&f.server, &id, with("Bearer nope"))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 401);
    }
    // The guessing loop is stopped, even with the right token, at every management method.
    let right = format!("Bearer {token}");
    let e = register::read(&f.server, &id, with(&right))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 429);
    assert!(e
        .headers()
        .any(|(k, v)| k == "Retry-After" && v.parse::<u64>().unwrap() >= 1));
    let e = register::delete(&f.server, &id, with(&right))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 429);
    // Unknown client ids are counted too, and another client is unaffected.
    for _ in 0..3 {
        let e = register::read(&f.server, "no-such-client", with("Bearer nope"))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 401);
    }
    let e = register::read(&f.server, "no-such-client", with("Bearer nope"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 429);
    let other_right = format!("Bearer {other_token}");
    register::read(&f.server, &other, with(&other_right))
        .await
        .unwrap();
}

#[tokio::test]
async fn unused_registrations_expire_and_first_use_keeps_them() {
    let f = common::fixture_with(cfg_with(RegistrationConfig {
        unused_client_lifetime: 3600,
        ..open()
    }));
    let (unused, _) = registered(&f, json!({"redirect_uris": [common::REDIRECT]})).await;
    let (used, _) = registered(&f, json!({"redirect_uris": [common::REDIRECT]})).await;
    // `used` completes a code flow with PKCE before the hour is over.
    let code = f.code(&used, "a", true).await;
    f.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id={used}&code_verifier={}",
            common::VERIFIER
        ),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        f.server.client(&used).await.unwrap().unwrap().expires_at(),
        None
    );
    f.clock.advance(3600);
    assert!(f.server.client(&unused).await.unwrap().is_none(), "expired");
    assert!(
        f.server
            .client_registry()
            .unwrap()
            .client(&unused)
            .await
            .unwrap()
            .is_none(),
        "and deleted from the store"
    );
    assert!(
        f.server.client(&used).await.unwrap().is_some(),
        "used: kept"
    );
}

#[tokio::test]
async fn a_registered_public_client_step_up_is_not_blocked() {
    let f = common::fixture_with(cfg_with(open()));
    let (id, _) = registered(
        &f,
        json!({"redirect_uris": [common::REDIRECT], "scope": "a"}),
    )
    .await;
    let code = f.code(&id, "a%20b%20c", true).await;
    let t = f
        .token(
            &format!(
                "grant_type=authorization_code&code={code}&client_id={id}&code_verifier={}",
                common::VERIFIER
            ),
            None,
        )
        .await
        .unwrap();
    assert!(t.to_json().contains("a b c"), "{}", t.to_json());
}

#[tokio::test]
async fn metadata_advertises_the_registration_endpoint_only_when_enabled() {
    let on = common::fixture_with(cfg_with(open()));
    let doc = twisted_oauth2::endpoint::metadata::authorization_server_metadata(&on.server, true);
    let v: Value = serde_json::from_str(&doc.to_json()).unwrap();
    assert_eq!(
        v["registration_endpoint"],
        "https://as.example/oauth2/register"
    );
    let off = common::fixture();
    let doc = twisted_oauth2::endpoint::metadata::authorization_server_metadata(&off.server, true);
    let v: Value = serde_json::from_str(&doc.to_json()).unwrap();
    assert!(v.get("registration_endpoint").is_none());
}

// ---- Adapter tests through Rocket ----

struct TestConsent;

#[rocket::async_trait]
impl OnAuthenticate for TestConsent {
    async fn on_authenticate(
        &self,
        _req: &Request<'_>,
        p: PendingAuthorization,
    ) -> Result<Consent, OAuthError> {
        Ok(Consent::new(RawHtml(format!(
            "request_id={}\ncsrf_token={}\n",
            p.request_id, p.csrf_token
        ))))
    }
}

#[post("/decide", data = "<form>")]
async fn decide(form: Form<DecisionForm>, pending: PendingRequests<'_>) -> AuthorizeReply {
    pending.decide(&form, "alice").await
}

async fn rocket_app(reg: RegistrationConfig) -> LocalClient {
    let mut cfg = cfg_with(reg);
    cfg.allow_insecure_request_debug = true;
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .clock(Arc::new(FixedClock::at(common::T0)))
                .on_authenticate(TestConsent),
        )
        .mount("/", routes![decide]);
    LocalClient::untracked(rocket).await.unwrap()
}

#[rocket::async_test]
async fn rocket_registration_and_management() {
    let c = rocket_app(open()).await;
    let r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body(json!({"redirect_uris": [LOOPBACK], "client_name": "CLI"}).to_string())
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Created);
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_no_nulls(&v);
    let uri = url::Url::parse(v["registration_client_uri"].as_str().unwrap()).unwrap();
    let path = uri.path().to_owned();
    let auth = Header::new(
        "Authorization",
        format!(
            "Bearer {}",
            v["registration_access_token"].as_str().unwrap()
        ),
    );

    let r = c.get(path.clone()).dispatch().await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert!(r
        .headers()
        .get_one("WWW-Authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let r = c.get(path.clone()).header(auth.clone()).dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    let got: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_eq!(got["client_name"], "CLI");

    let r = c
        .put(path.clone())
        .header(auth.clone())
        .header(ContentType::JSON)
        .body(json!({"redirect_uris": ["https://x.example/cb"]}).to_string())
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    // The registration access token rotated (RFC 7592 §3).
    let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    let auth = Header::new(
        "Authorization",
        format!(
            "Bearer {}",
            v["registration_access_token"].as_str().unwrap()
        ),
    );
    let r = c.delete(path.clone()).header(auth.clone()).dispatch().await;
    assert_eq!(r.status(), Status::NoContent);
    let r = c.get(path).header(auth).dispatch().await;
    assert_eq!(r.status(), Status::Unauthorized);

    // Bad input is a 4xx, never a 5xx.
    for (ct, body) in [
        (ContentType::JSON, "{".to_owned()),
        (ContentType::JSON, "[]".to_owned()),
        (ContentType::Form, "a=b".to_owned()),
        (
            ContentType::JSON,
            format!("{{\"x\":\"{}\"}}", "y".repeat(20_000)),
        ),
    ] {
        let r = c
            .post("/oauth2/register")
            .header(ct)
            .body(body)
            .dispatch()
            .await;
        assert!(
            r.status().code >= 400 && r.status().code < 500,
            "{}",
            r.status()
        );
    }

    let doc = c
        .get("/.well-known/oauth-authorization-server")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(
        doc["registration_endpoint"],
        "https://as.example/oauth2/register"
    );
}

#[rocket::async_test]
async fn rocket_routes_are_absent_when_disabled_and_rate_limit_is_429() {
    let c = rocket_app(RegistrationConfig::default()).await;
    let r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body("{}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NotFound);

    let c = rocket_app(RegistrationConfig {
        rate_limit_per_minute: 1,
        ..open()
    })
    .await;
    let body = json!({"redirect_uris": [LOOPBACK]}).to_string();
    let first = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body(body.clone())
        .dispatch()
        .await;
    assert_eq!(first.status(), Status::Created);
    let r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::TooManyRequests);
    assert!(r.headers().get_one("Retry-After").is_some());
}

#[rocket::async_test]
async fn rocket_registered_public_client_completes_a_code_flow_with_pkce() {
    let c = rocket_app(open()).await;
    let r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body(json!({"redirect_uris": [LOOPBACK], "grant_types": ["authorization_code", "refresh_token"]}).to_string())
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Created);
    let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    let id = v["client_id"].as_str().unwrap().to_owned();
    let redirect = "http://127.0.0.1:51004/callback";
    let r = c
        .get(format!(
            "/oauth2/authorize?response_type=code&client_id={id}&redirect_uri={}&scope=a&state=st&code_challenge={}&code_challenge_method=S256",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>(),
            s256_challenge(common::VERIFIER)
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let cookies: Vec<Cookie<'static>> =
        r.cookies().iter().map(|c| c.clone().into_owned()).collect();
    let page = r.into_string().await.unwrap();
    let field = |name: &str| {
        page.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let r = c
        .post("/decide")
        .header(ContentType::Form)
        .cookies(cookies)
        .body(format!(
            "request_id={}&csrf_token={}&decision=allow",
            field("request_id"),
            field("csrf_token")
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::SeeOther);
    let loc = url::Url::parse(r.headers().get_one("Location").unwrap()).unwrap();
    assert!(loc.as_str().starts_with(redirect));
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let t = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .body(format!(
            "grant_type=authorization_code&code={code}&client_id={id}&redirect_uri={}&code_verifier={}",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>(),
            common::VERIFIER
        ))
        .dispatch()
        .await;
    assert_eq!(t.status(), Status::Ok);
    let t: Value = serde_json::from_str(&t.into_string().await.unwrap()).unwrap();
    assert!(t["access_token"].is_string() && t["refresh_token"].is_string());
}

#[rocket::async_test]
async fn rocket_registration_is_callable_cross_origin() {
    let c = rocket_app(open()).await;
    let r = c
        .options("/oauth2/register")
        .header(Header::new("Origin", "https://inspector.example"))
        .header(Header::new("Access-Control-Request-Method", "POST"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NoContent);
    assert_eq!(
        r.headers().get_one("Access-Control-Allow-Origin"),
        Some("*")
    );
    assert!(r
        .headers()
        .get_one("Access-Control-Allow-Methods")
        .unwrap()
        .contains("POST"));
    let r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .header(Header::new("Origin", "https://inspector.example"))
        .body(json!({"redirect_uris": [LOOPBACK]}).to_string())
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Created);
    assert_eq!(
        r.headers().get_one("Access-Control-Allow-Origin"),
        Some("*")
    );
    assert!(r
        .headers()
        .get_one("Access-Control-Allow-Credentials")
        .is_none());
}

#[rocket::async_test]
async fn other_methods_are_405_with_allow_rfc7591_3_rfc7592_2() {
    let c = rocket_app(open()).await;
    for m in [
        rocket::http::Method::Get,
        rocket::http::Method::Put,
        rocket::http::Method::Delete,
    ] {
        let r = c.req(m, "/oauth2/register").dispatch().await;
        assert_eq!(r.status(), Status::MethodNotAllowed, "{m}");
        assert_eq!(r.headers().get_one("Allow"), Some("POST"));
    }
    let r = c.post("/oauth2/register/some-client").dispatch().await;
    assert_eq!(r.status(), Status::MethodNotAllowed);
    assert_eq!(r.headers().get_one("Allow"), Some("GET, PUT, DELETE"));
    let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_eq!(v["error"], "invalid_request");
}
