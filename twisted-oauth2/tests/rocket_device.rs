//! Adapter tests of the device authorization grant through Rocket (RFC 8628): the endpoint
//! mounted by `[oauth2.device]`, its answers and headers, its 405 and preflight, the
//! metadata member, and a whole flow to tokens.

mod common;

use std::sync::Arc;

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::device::{self, GRANT_TYPE};
use twisted_oauth2::rocket::{OAuth2, OAuth2State};

async fn client() -> Client {
    client_at(Arc::new(FixedClock::at(common::T0))).await
}

async fn client_at(clock: Arc<FixedClock>) -> Client {
    let mut cfg = common::config();
    cfg.trusted_proxy_header = Some("X-Forwarded-Proto".into());
    cfg.cors_allowed_origins = vec!["https://app.example".into()];
    cfg.device.enabled = true;
    cfg.clients
        .push(common::client("cli", None, &[GRANT_TYPE], &["a", "b"]));
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment).attach(
        OAuth2::fairing()
            .clock(clock)
            .on_authenticate(common::NoConsent),
    );
    Client::untracked(rocket).await.expect("valid rocket")
}

async fn post<'c>(c: &'c Client, path: &str, body: &str) -> LocalResponse<'c> {
    c.post(path.to_owned())
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Origin", "https://app.example"))
        .body(body)
        .dispatch()
        .await
}

async fn json(r: LocalResponse<'_>) -> serde_json::Value {
    serde_json::from_str(&r.into_string().await.unwrap_or_default()).expect("JSON body")
}

#[rocket::async_test]
async fn the_device_flow_runs_over_http_to_tokens_rfc8628_3() {
    let clock = Arc::new(FixedClock::at(common::T0));
    let c = client_at(clock.clone()).await;
    let r = post(&c, "/oauth2/device_authorization", "client_id=cli&scope=a").await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    assert_eq!(
        r.headers().get_one("Access-Control-Allow-Origin"),
        Some("https://app.example")
    );
    let a = json(r).await;
    let device_code = a["device_code"].as_str().unwrap().to_owned();
    let user_code = a["user_code"].as_str().unwrap().to_owned();
    assert_eq!(a["verification_uri"], "https://as.example/device");
    assert_eq!(a["interval"], 5);

    let poll = format!("grant_type={GRANT_TYPE}&client_id=cli&device_code={device_code}");
    let r = post(&c, "/oauth2/token", &poll).await;
    assert_eq!(r.status(), Status::BadRequest);
    assert_eq!(json(r).await["error"], "authorization_pending");

    let server = c
        .rocket()
        .state::<OAuth2State>()
        .unwrap()
        .server()
        .unwrap()
        .clone();
    let (code, _) = device::pending(&server, &user_code).await.unwrap().unwrap();
    let scope = twisted_oauth2::Scope::parse_param("a").unwrap();
    assert!(device::approve(&server, &code, "alice", scope)
        .await
        .unwrap());
    let r = post(&c, "/oauth2/token", &poll).await;
    assert_eq!(r.status(), Status::BadRequest, "polled again at once");
    assert_eq!(json(r).await["error"], "slow_down");
    clock.advance(10);
    let r = post(&c, "/oauth2/token", &poll).await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    let t = json(r).await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "a");
    clock.advance(10);
    let r = post(&c, "/oauth2/token", &poll).await;
    assert_eq!(json(r).await["error"], "invalid_grant", "single use");
}

#[rocket::async_test]
async fn the_device_endpoint_has_405_a_preflight_and_a_metadata_member() {
    let c = client().await;
    let r = c.get("/oauth2/device_authorization").dispatch().await;
    assert_eq!(r.status(), Status::MethodNotAllowed);
    assert_eq!(r.headers().get_one("Allow"), Some("POST"));
    let r = c
        .options("/oauth2/device_authorization")
        .header(Header::new("Origin", "https://app.example"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NoContent);
    assert_eq!(
        r.headers().get_one("Access-Control-Allow-Methods"),
        Some("POST, OPTIONS")
    );
    let r = c
        .get("/.well-known/oauth-authorization-server")
        .dispatch()
        .await;
    let doc = json(r).await;
    assert_eq!(
        doc["device_authorization_endpoint"],
        "https://as.example/oauth2/device_authorization"
    );
    let r = post(&c, "/oauth2/device_authorization", "client_id=nobody").await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(json(r).await["error"], "invalid_client");
}

/// Signed in as the value of the `X-Test-User` header.
struct HeaderUser;

#[rocket::async_trait]
impl twisted_oauth2::rocket::SignedIn for HeaderUser {
    async fn user(&self, req: &rocket::Request<'_>) -> Option<String> {
        req.headers().get_one("X-Test-User").map(str::to_owned)
    }
}

async fn with_page(clock: Arc<FixedClock>) -> Client {
    let mut cfg = common::config();
    cfg.trusted_proxy_header = Some("X-Forwarded-Proto".into());
    cfg.device.enabled = true;
    cfg.clients
        .push(common::client("cli", None, &[GRANT_TYPE], &["a", "b"]));
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment).attach(
        OAuth2::fairing()
            .clock(clock)
            .on_authenticate(common::NoConsent)
            .device_verification(HeaderUser, "/login"),
    );
    Client::tracked(rocket).await.expect("valid rocket")
}

/// The hidden `csrf_token` of a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .expect("csrf field")
        + 25;
    html[at..].split('"').next().unwrap().to_owned()
}

#[rocket::async_test]
async fn the_verification_page_asks_to_confirm_then_decides_once_with_csrf_rfc8628_5_4() {
    let clock = Arc::new(FixedClock::at(common::T0));
    let c = with_page(clock.clone()).await;
    let r = post(&c, "/oauth2/device_authorization", "client_id=cli&scope=a").await;
    let a = json(r).await;
    let device_code = a["device_code"].as_str().unwrap().to_owned();
    let typed = a["user_code"].as_str().unwrap().to_lowercase();

    // Not signed in: to the login page, coming back to the code.
    let r = c.get(format!("/device?user_code={typed}")).dispatch().await;
    assert_eq!(r.status(), Status::SeeOther);
    assert!(r
        .headers()
        .get_one("Location")
        .unwrap()
        .starts_with("/login?next=%2Fdevice%3Fuser_code%3D"));

    // verification_uri_complete only shows the confirmation: nothing is approved yet.
    let page = |path: String| {
        c.get(path)
            .header(Header::new("X-Test-User", "alice"))
            .header(Header::new("X-Forwarded-Proto", "https"))
    };
    let r = page(format!("/device?user_code={typed}")).dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.headers().get_one("X-Frame-Options"), Some("DENY"));
    assert!(r
        .headers()
        .get_one("Content-Security-Policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = r.into_string().await.unwrap();
    assert!(html.contains("name=\"decision\" value=\"allow\""));
    let poll = format!("grant_type={GRANT_TYPE}&client_id=cli&device_code={device_code}");
    let r = post(&c, "/oauth2/token", &poll).await;
    assert_eq!(json(r).await["error"], "authorization_pending");

    let code = typed.replace('-', "").to_uppercase();
    let decide = |csrf: &str| {
        c.post("/device")
            .header(ContentType::Form)
            .header(Header::new("X-Test-User", "alice"))
            .header(Header::new("X-Forwarded-Proto", "https"))
            .body(format!("user_code={code}&csrf_token={csrf}&decision=allow"))
    };
    let r = decide("forged").dispatch().await;
    assert_eq!(
        r.status(),
        Status::Forbidden,
        "a wrong CSRF token decides nothing"
    );
    // The refused form spent the browser's token: show the page again for a new one.
    let html = page(format!("/device?user_code={typed}"))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    let csrf = csrf_of(&html);
    let r = decide(&csrf).dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert!(r.into_string().await.unwrap().contains("Device connected"));
    let r = decide(&csrf).dispatch().await;
    assert_ne!(r.status(), Status::Ok, "the form is accepted once");

    clock.advance(10);
    let r = post(&c, "/oauth2/token", &poll).await;
    assert_eq!(r.status(), Status::Ok);
    assert!(json(r).await["access_token"].is_string());
}

#[rocket::async_test]
async fn the_verification_page_refuses_unknown_codes_without_a_lookup_oracle() {
    let c = with_page(Arc::new(FixedClock::at(common::T0))).await;
    for typed in ["BCDF-GHJK", "not%20a%20code", ""] {
        let r = c
            .get(format!("/device?user_code={typed}"))
            .header(Header::new("X-Test-User", "alice"))
            .header(Header::new("X-Forwarded-Proto", "https"))
            .dispatch()
            .await;
        let status = r.status();
        let html = r.into_string().await.unwrap();
        assert!(html.contains("name=\"user_code\""), "the entry form again");
        assert!(!html.contains("csrf_token"));
        assert!(matches!(status.code, 200 | 400));
    }
}

#[rocket::async_test]
async fn a_user_code_guessing_loop_is_stopped_after_the_configured_attempts() {
    let mut cfg = common::config();
    cfg.trusted_proxy_header = Some("X-Forwarded-Proto".into());
    cfg.device.enabled = true;
    cfg.limits.user_code_failures = 3;
    cfg.clients
        .push(common::client("cli", None, &[GRANT_TYPE], &["a", "b"]));
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment).attach(
        OAuth2::fairing()
            .on_authenticate(common::NoConsent)
            .device_verification(HeaderUser, "/login"),
    );
    let c = Client::tracked(rocket).await.expect("valid rocket");
    let a = json(post(&c, "/oauth2/device_authorization", "client_id=cli&scope=a").await).await;
    let real = a["user_code"].as_str().unwrap().to_owned();
    let try_code = |code: &str| {
        c.get(format!("/device?user_code={code}"))
            .header(Header::new("X-Test-User", "mallory"))
            .header(Header::new("X-Forwarded-Proto", "https"))
    };
    for guess in ["BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD"] {
        assert_eq!(
            try_code(guess).dispatch().await.status(),
            Status::BadRequest
        );
    }
    let r = try_code(&real).dispatch().await;
    assert_eq!(
        r.status(),
        Status::TooManyRequests,
        "stopped, even for a right guess"
    );
    assert!(r.headers().get_one("Retry-After").is_some());
}
