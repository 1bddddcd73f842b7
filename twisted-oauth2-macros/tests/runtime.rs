//! The expansion at run time: the inserted guard runs before the handler's own guards and its
//! data, carries the literal's scope, and brings its `Sentinel` along.

use std::sync::atomic::{AtomicUsize, Ordering};

use rocket::http::Status;
use rocket::local::blocking::Client;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{post, routes, Build, Config, Rocket};
use twisted_oauth2::oauth;
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::ServerConfig;

static OTHER_GUARD_RUNS: AtomicUsize = AtomicUsize::new(0);

/// A request guard that counts how often it runs.
struct Counted;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Counted {
    type Error = ();

    async fn from_request(_: &'r Request<'_>) -> Outcome<Self, ()> {
        OTHER_GUARD_RUNS.fetch_add(1, Ordering::SeqCst);
        Outcome::Success(Counted)
    }
}

#[oauth(scope = "notes:write notes:write profile")]
#[post("/notes", data = "<body>")]
fn save(_counted: Counted, body: String) -> String {
    body
}

fn app() -> Rocket<Build> {
    rocket::custom(Config::debug_default()).mount("/", routes![save])
}

#[test]
fn request_without_token_fails_before_other_guards_run() {
    let config = ServerConfig {
        issuer: "http://127.0.0.1:8000".into(),
        // The local client speaks plain HTTP.
        allow_insecure_request_debug: true,
        ..Default::default()
    };
    let app = app().attach(OAuth2::fairing().config(config));
    let client = Client::untracked(app).expect("valid rocket");
    let response = client.post("/notes").body("hello").dispatch();
    assert_eq!(response.status(), Status::Unauthorized);
    let challenge = response
        .headers()
        .get_one("WWW-Authenticate")
        .expect("a Bearer challenge");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(
        challenge.contains(r#"scope="notes:write profile""#),
        "{challenge}"
    );
    assert_eq!(OTHER_GUARD_RUNS.load(Ordering::SeqCst), 0);
}

#[test]
fn launch_aborts_when_the_fairing_is_missing() {
    let error = Client::untracked(app()).expect_err("sentinel aborts ignition");
    assert!(
        matches!(error.kind(), rocket::error::ErrorKind::SentinelAborts(_)),
        "{error:?}"
    );
}
