//! Launch-time checks of the fairing: mistakes that used to launch silently abort with one
//! clear line, or warn where the setting is legal. The log is captured by a logger this
//! test binary installs before any Rocket (Rocket keeps an installed logger).

mod common;

use std::sync::{Mutex, OnceLock};

use rocket::figment::Figment;
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use twisted_oauth2::config::ServerConfig;
use twisted_oauth2::oauth;
use twisted_oauth2::rocket::OAuth2;

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("{}: {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static LOG: OnceLock<&'static Capture> = OnceLock::new();
    LOG.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        let _ = log::set_logger(c);
        log::set_max_level(log::LevelFilter::Info);
        c
    })
}

/// Whether some captured line contains every one of `parts`.
fn logged(parts: &[&str]) -> bool {
    capture()
        .0
        .lock()
        .map(|v| v.iter().any(|l| parts.iter().all(|p| l.contains(p))))
        .unwrap_or(false)
}

fn figment(cfg: ServerConfig) -> Figment {
    rocket::Config::figment()
        .merge(("log_level", "normal"))
        .merge(("oauth2", cfg))
}

fn svc_only() -> ServerConfig {
    let mut cfg = common::config();
    cfg.clients
        .retain(|c| !c.grant_types.iter().any(|g| g == "authorization_code"));
    cfg
}

#[oauth(scope = "nobody-gets-this")]
#[get("/unreachable")]
fn unreachable_scope() -> &'static str {
    "x"
}

#[oauth(scope = "a")]
#[get("/fine")]
fn fine_scope() -> &'static str {
    "x"
}

#[rocket::async_test]
async fn missing_issuer_aborts_launch_naming_the_key() {
    capture();
    let mut cfg = svc_only();
    cfg.issuer = String::new();
    let e = Client::untracked(rocket::custom(figment(cfg)).attach(OAuth2::fairing()))
        .await
        .expect_err("no issuer");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&["`oauth2.issuer` is not set", "public URL"]));
}

#[rocket::async_test]
async fn missing_issuer_is_derived_from_rocket_with_the_debug_override_and_said_so() {
    capture();
    let mut cfg = svc_only();
    cfg.issuer = String::new();
    cfg.allow_insecure_request_debug = true;
    let figment = figment(cfg).merge(("port", 8123));
    let c = Client::untracked(rocket::custom(figment).attach(OAuth2::fairing()))
        .await
        .expect("launches");
    let doc: serde_json::Value = serde_json::from_str(
        &c.get("/.well-known/oauth-authorization-server")
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["issuer"], "http://127.0.0.1:8123");
    assert!(logged(&[
        "using http://127.0.0.1:8123",
        "derived from Rocket"
    ]));
}

#[rocket::async_test]
async fn issuer_elsewhere_than_the_listener_warns_without_a_proxy_header() {
    capture();
    let mut cfg = svc_only();
    cfg.issuer = "http://127.0.0.1:8000".into();
    cfg.allow_insecure_request_debug = true;
    let figment = figment(cfg).merge(("port", 8101));
    // Liftoff runs for a local client too.
    let _c = Client::untracked(rocket::custom(figment).attach(OAuth2::fairing()))
        .await
        .expect("legal: only a warning");
    assert!(logged(&[
        "the issuer http://127.0.0.1:8000 is not where Rocket listens",
        ":8101"
    ]));
}

#[rocket::async_test]
async fn unknown_grant_type_aborts_listing_the_valid_names() {
    capture();
    let mut cfg = svc_only();
    cfg.clients[0].grant_types = vec!["client-credentials".into()];
    let e = Client::untracked(rocket::custom(figment(cfg)).attach(OAuth2::fairing()))
        .await
        .expect_err("typo");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&[
        "unknown grant type `client-credentials`",
        "authorization_code, refresh_token, client_credentials"
    ]));
}

#[rocket::async_test]
async fn code_grant_client_without_consent_hook_aborts() {
    capture();
    let e = Client::untracked(rocket::custom(figment(common::config())).attach(OAuth2::fairing()))
        .await
        .expect_err("no hook");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&[
        "client `web` may use the authorization code grant but no consent hook"
    ]));
}

#[rocket::async_test]
async fn oauth_scope_no_client_may_obtain_warns_naming_the_route() {
    capture();
    let rocket = rocket::custom(figment(svc_only()))
        .attach(OAuth2::fairing())
        .mount("/", routes![unreachable_scope, fine_scope]);
    let _c = Client::untracked(rocket)
        .await
        .expect("legal: only a warning");
    assert!(logged(&[
        "route `unreachable_scope` requires scope `nobody-gets-this`",
        "no configured client"
    ]));
    assert!(!logged(&["route `fine_scope` requires"]));
}

#[rocket::async_test]
async fn config_type_errors_name_oauth2_key_and_unit() {
    capture();
    let figment = rocket::Config::figment()
        .merge(("log_level", "normal"))
        .merge(("oauth2", svc_only()))
        .merge(("oauth2.access_token_lifetime", "1h"));
    let e = Client::untracked(rocket::custom(figment).attach(OAuth2::fairing()))
        .await
        .expect_err("bad type");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&[
        "invalid configuration `oauth2.access_token_lifetime`",
        "seconds"
    ]));
    assert!(!logged(&["access_token_lifetime.oauth2"]));
}

#[rocket::async_test]
async fn open_registration_with_rockets_ip_header_and_no_trusted_proxy_warns() {
    capture();
    let mut cfg = svc_only();
    cfg.allow_insecure_request_debug = true;
    cfg.registration.enabled = true;
    // Rocket's default (the repository's Rocket.toml turns it off).
    let figment = figment(cfg).merge(("ip_header", "X-Real-IP"));
    let _c = Client::untracked(rocket::custom(figment).attach(OAuth2::fairing()))
        .await
        .expect("legal: only a warning");
    assert!(logged(&[
        "registration is open and Rocket's ip_header (`X-Real-IP`) is on",
        "oauth2.trusted_proxies"
    ]));
}
