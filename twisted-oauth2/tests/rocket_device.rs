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
        .body(body.to_owned())
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

    let server = c.rocket().state::<OAuth2State>().unwrap().server().clone();
    let (code, _) = device::pending(&server, &user_code).await.unwrap().unwrap();
    let scope = twisted_oauth2::Scope::parse_param("a").unwrap();
    assert!(device::approve(&server, &code, "alice", scope).await.unwrap());
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
