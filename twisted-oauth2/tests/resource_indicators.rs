//! Protocol and adapter tests of resource indicators (RFC 8707): `resource` on the
//! authorization request and the token grants, `invalid_target`, narrowing and widening,
//! the audience in introspection and at the application's own protected routes.

mod common;

use common::*;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use twisted_oauth2::config::ServerConfig;
use twisted_oauth2::endpoint::authorize::{self, AuthorizeError};
use twisted_oauth2::endpoint::introspect::{self, IntrospectRequest};
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::{oauth, ErrorCode};

/// This application's own resource (the issuer: `resource` is not configured).
const OWN: &str = "https://as.example";
/// Another resource server the authorization server issues tokens for.
const API: &str = "https://api.example/mcp";

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn rconfig() -> ServerConfig {
    let mut cfg = config();
    cfg.resources = vec![API.into()];
    let mut rs = client("rs", Some("rs-secret"), &[], &[]);
    rs.introspect = true;
    cfg.clients.push(rs);
    cfg
}

fn rfixture() -> Fixture {
    fixture_with(rconfig())
}

/// The `aud` member of the token's introspection.
async fn aud(f: &Fixture, token: &str) -> serde_json::Value {
    let header = basic("rs", "rs-secret");
    let r = introspect::handle(
        &f.server,
        IntrospectRequest {
            body: format!("token={token}").as_bytes(),
            content_type: Some(FORM),
            authorization: Some(&header),
            query: None,
            transport: SECURE,
            ..Default::default()
        },
    )
    .await
    .expect("introspection answers");
    assert!(r.active, "the token is active");
    serde_json::to_value(&r).unwrap()["aud"].clone()
}

fn pkce_query(resources: &[&str]) -> String {
    let mut q = format!(
        "response_type=code&client_id=web&scope=a&state=xyz&code_challenge={}&code_challenge_method=S256",
        twisted_oauth2::pkce::s256_challenge(VERIFIER)
    );
    for r in resources {
        q.push_str(&format!("&resource={}", enc(r)));
    }
    q
}

async fn redeem(
    f: &Fixture,
    code: &str,
    resources: &[&str],
) -> Result<twisted_oauth2::token::TokenResponse, twisted_oauth2::OAuthError> {
    let mut body =
        format!("grant_type=authorization_code&code={code}&client_id=web&code_verifier={VERIFIER}");
    for r in resources {
        body.push_str(&format!("&resource={}", enc(r)));
    }
    f.token(&body, None).await
}

async fn refresh(
    f: &Fixture,
    refresh: &str,
    resources: &[&str],
) -> Result<twisted_oauth2::token::TokenResponse, twisted_oauth2::OAuthError> {
    let mut body = format!("grant_type=refresh_token&refresh_token={refresh}&client_id=web");
    for r in resources {
        body.push_str(&format!("&resource={}", enc(r)));
    }
    f.token(&body, None).await
}

#[tokio::test]
async fn an_unknown_resource_at_authorize_is_redirected_invalid_target_with_state_rfc8707_2() {
    let f = rfixture();
    for bad in [
        "https://elsewhere.example/",
        "/relative",
        "https://api.example/mcp#frag",
    ] {
        let q = pkce_query(&[bad]);
        let e = authorize::validate(&f.server, q.as_bytes(), SECURE, BINDING)
            .await
            .expect_err("refused");
        let AuthorizeError::Redirect { redirect, error } = e else {
            panic!("{bad}: not a redirect");
        };
        assert_eq!(error.code(), ErrorCode::INVALID_TARGET, "{bad}");
        let loc = url::Url::parse(redirect.location()).unwrap();
        let pairs: Vec<(String, String)> = loc.query_pairs().into_owned().collect();
        assert!(
            pairs.contains(&("error".into(), "invalid_target".into())),
            "{pairs:?}"
        );
        assert!(pairs.contains(&("state".into(), "xyz".into())), "{pairs:?}");
    }
    assert_eq!(
        f.server.pending_count(),
        0,
        "nothing pending after a refusal"
    );
}

#[tokio::test]
async fn the_pending_request_shows_the_named_resources_in_configured_spelling() {
    let f = rfixture();
    // Scheme and host case-insensitive, default port dropped, empty path equal to `/`.
    let q = pkce_query(&["HTTPS://API.example:443/mcp", "https://as.example/"]);
    let p = authorize::validate(&f.server, q.as_bytes(), SECURE, BINDING)
        .await
        .expect("valid");
    let got: Vec<&str> = p.resources.iter().map(|r| &**r).collect();
    assert_eq!(got, [API, OWN]);
}

#[tokio::test]
async fn a_code_bound_to_resources_yields_them_and_the_token_request_narrows_rfc8707_2_2() {
    let f = rfixture();
    let code = f.code_for_query(&pkce_query(&[OWN, API])).await;
    let t = redeem(&f, &code, &[API]).await.expect("narrowed to API");
    assert_eq!(aud(&f, &t.access_token).await, serde_json::json!(API));
    let refresh_token = t.refresh_token.clone().expect("a refresh token");
    // The refresh token keeps the whole granted set.
    assert_eq!(aud(&f, &refresh_token).await, serde_json::json!([OWN, API]));
    // A refresh may name the other granted resource, and naming none gives both.
    let t2 = refresh(&f, &refresh_token, &[OWN])
        .await
        .expect("narrowed to OWN");
    assert_eq!(aud(&f, &t2.access_token).await, serde_json::json!(OWN));
    let t3 = refresh(&f, t2.refresh_token.as_deref().unwrap(), &[])
        .await
        .expect("all granted");
    assert_eq!(
        aud(&f, &t3.access_token).await,
        serde_json::json!([OWN, API])
    );
}

#[tokio::test]
async fn a_token_request_cannot_widen_the_resources_of_its_code_rfc8707_2_2() {
    let f = rfixture();
    // The authorization request named nothing: the code is for the default audience.
    let code = f.code_for_query(&pkce_query(&[])).await;
    let e = redeem(&f, &code, &[API])
        .await
        .expect_err("widening refused");
    assert_eq!(e.code(), ErrorCode::INVALID_TARGET);
    assert_eq!(e.status(), 400);
    // And a code for API alone cannot be redeemed for OWN.
    let code = f.code_for_query(&pkce_query(&[API])).await;
    let e = redeem(&f, &code, &[OWN])
        .await
        .expect_err("widening refused");
    assert_eq!(e.code(), ErrorCode::INVALID_TARGET);
}

#[tokio::test]
async fn a_refresh_cannot_widen_the_family_and_unknown_resources_are_invalid_target() {
    let f = rfixture();
    let code = f.code_for_query(&pkce_query(&[API])).await;
    let t = redeem(&f, &code, &[]).await.expect("redeemed");
    assert_eq!(aud(&f, &t.access_token).await, serde_json::json!(API));
    let rt = t.refresh_token.unwrap();
    let e = refresh(&f, &rt, &[OWN]).await.expect_err("not granted");
    assert_eq!(e.code(), ErrorCode::INVALID_TARGET);
    let e = refresh(&f, &rt, &["https://unknown.example/"])
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), ErrorCode::INVALID_TARGET);
    // The refused requests did not use up the refresh token.
    refresh(&f, &rt, &[API]).await.expect("still usable");
}

#[tokio::test]
async fn tokens_without_resource_get_the_default_audience() {
    let f = rfixture();
    let code = f.code("web", "a", true).await;
    let t = f.redeem_web(&code).await.expect("redeemed");
    assert_eq!(aud(&f, &t.access_token).await, serde_json::json!(OWN));
    let cc = f
        .token(
            "grant_type=client_credentials&scope=a",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap();
    assert_eq!(aud(&f, &cc.access_token).await, serde_json::json!(OWN));
}

#[tokio::test]
async fn client_credentials_take_any_known_resource_rfc8707_2() {
    let f = rfixture();
    let body = format!(
        "grant_type=client_credentials&scope=a&resource={}&resource={}",
        enc(API),
        enc(OWN)
    );
    let t = f.token(&body, Some(("svc", "svc-secret"))).await.unwrap();
    assert_eq!(
        aud(&f, &t.access_token).await,
        serde_json::json!([API, OWN])
    );
    let body = format!(
        "grant_type=client_credentials&scope=a&resource={}",
        enc("https://api.example/other")
    );
    let e = f
        .token(&body, Some(("svc", "svc-secret")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::INVALID_TARGET);
    assert_eq!(e.status(), 400);
}

#[tokio::test]
async fn a_configured_resource_that_is_not_an_absolute_uri_is_a_config_error() {
    let mut cfg = config();
    cfg.resources = vec!["api.example/no-scheme".into()];
    let e = twisted_oauth2::AuthorizationServer::builder(cfg)
        .build()
        .expect_err("refused");
    let msg = e.to_string();
    assert!(
        msg.contains("resources") && msg.contains("api.example/no-scheme"),
        "{msg}"
    );
}

// --- the application's own protected routes -----------------------------------------------

#[oauth(scope = "a")]
#[get("/a")]
fn need_a() -> &'static str {
    "a-ok"
}

async fn rocket_app() -> Client {
    let mut cfg = rconfig();
    cfg.allow_insecure_request_debug = true;
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment)
        .attach(OAuth2::fairing().on_authenticate(NoConsent))
        .mount("/", routes![need_a]);
    Client::untracked(rocket).await.expect("launch")
}

async fn cc_token(client: &Client, resources: &[&str]) -> String {
    let mut body = "grant_type=client_credentials&scope=a".to_owned();
    for r in resources {
        body.push_str(&format!("&resource={}", enc(r)));
    }
    let r = client
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("Authorization", basic("svc", "svc-secret")))
        .body(body)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let v: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

#[rocket::async_test]
async fn a_protected_route_refuses_a_token_for_another_resource_with_401_invalid_token() {
    let client = rocket_app().await;
    let foreign = cc_token(&client, &[API]).await;
    let r = client
        .get("/a")
        .header(Header::new("Authorization", format!("Bearer {foreign}")))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    let www = r.headers().get_one("WWW-Authenticate").unwrap().to_owned();
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    // Its own audience (named, or by default) is admitted; one naming both too.
    for resources in [vec![OWN], vec![], vec![API, OWN]] {
        let t = cc_token(&client, &resources).await;
        let r = client
            .get("/a")
            .header(Header::new("Authorization", format!("Bearer {t}")))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::Ok, "{resources:?}");
    }
}

#[rocket::async_test]
async fn the_token_endpoint_answers_invalid_target_as_json_400() {
    let client = rocket_app().await;
    let r = client
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("Authorization", basic("svc", "svc-secret")))
        .body(format!(
            "grant_type=client_credentials&resource={}",
            enc("https://nope.example/")
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
    assert_eq!(
        r.headers().get_one("Cache-Control"),
        Some("no-store"),
        "errors of the token endpoint are not cached either"
    );
    let v: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_eq!(v["error"], "invalid_target");
}

#[tokio::test]
async fn a_record_stored_without_audience_counts_as_the_default_one() {
    let f = rfixture();
    let token = "legacy-token-0123456789";
    let record = twisted_oauth2::storage::TokenRecord::new(
        "svc",
        twisted_oauth2::Scope::from_tokens(["a"]).unwrap(),
        twisted_oauth2::storage::GrantId::random(),
        T0,
        T0 + 600,
    );
    f.server
        .stores()
        .access
        .put_access(&twisted_oauth2::token::TokenDigest::of(token), &record)
        .await
        .unwrap();
    assert!(f.access_ok(token).await);
    assert_eq!(aud(&f, token).await, serde_json::json!(OWN));
}
