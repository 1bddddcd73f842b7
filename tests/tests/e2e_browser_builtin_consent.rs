//! The built-in consent page in a real browser: headless Chromium, driven by
//! `tests/browser/builtin_consent.mjs` (playwright-core), against a small app that uses
//! `OAuth2::builtin_consent` with its own login page, served on a loopback port: the full
//! flow by mouse, the same flow by keyboard only (Tab to Allow, Enter), and a 375 px wide
//! viewport. Screenshots are kept in `target/browser-artifacts/`.
//!
//! Skips with a notice when Node.js, Chromium or playwright-core are missing, unless
//! `TWISTED_OAUTH2_REQUIRE_BROWSER=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use rocket::figment::providers::{Format, Toml};
use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::Request;
use rocket::response::content::RawHtml;
use rocket::response::Redirect;
use rocket::{get, post, routes};
use twisted_oauth2::rocket::{OAuth2, SignedIn};

/// The app's session: the private cookie `user`.
struct Session;

#[rocket::async_trait]
impl SignedIn for Session {
    async fn user(&self, req: &Request<'_>) -> Option<String> {
        req.cookies()
            .get_private("user")
            .map(|c| c.value().to_owned())
    }
}

fn local(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/")
        .to_owned()
}

#[get("/login?<next>")]
fn login_page(next: Option<&str>) -> RawHtml<String> {
    let next = local(next).replace('&', "&amp;").replace('"', "&quot;");
    RawHtml(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Sign in</title></head><body><form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label>Username <input name=\"username\" autofocus></label>\
         <label>Password <input name=\"password\" type=\"password\"></label>\
         <button type=\"submit\">Sign in</button></form></body></html>"
    ))
}

#[derive(FromForm)]
struct Login {
    username: String,
    password: String,
    next: Option<String>,
}

#[post("/login", data = "<form>")]
fn login(form: Form<Login>, cookies: &CookieJar<'_>) -> Redirect {
    if form.password == "wonderland" {
        cookies
            .add_private(Cookie::build(("user", form.username.clone())).same_site(SameSite::Lax));
    }
    Redirect::to(local(form.next.as_deref()))
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts")
}

#[rocket::async_test]
async fn chromium_uses_the_builtin_consent_page_by_mouse_keyboard_and_on_a_phone() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    if let Some(why) = common::missing_browser_tools(&dir, &["playwright-core"]) {
        if std::env::var("TWISTED_OAUTH2_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("browser test required but {why}");
        }
        eprintln!("skipping the Chromium test: {why}");
        return;
    }
    let port = common::free_port();
    let config = format!(
        r#"
        [default]
        port = {port}
        address = "127.0.0.1"
        log_level = "off"
        shutdown = {{ grace = 0, mercy = 0, ctrlc = false }}

        [default.oauth2]
        issuer = "http://127.0.0.1:{port}"
        allow_insecure_request_debug = true

        [default.oauth2.scope_descriptions]
        photos = "See and download your photos"
        print = "Order prints in your name"

        [[default.oauth2.clients]]
        id = "photo-app"
        name = "Photo Printer <Beta>"
        verified = false
        redirect_uris = ["http://127.0.0.1:9000/callback"]
        grant_types = ["authorization_code"]
        "#
    );
    let figment = rocket::figment::Figment::from(rocket::Config::debug_default())
        .merge(Toml::string(&config).nested());
    let app = rocket::custom(figment)
        .attach(OAuth2::fairing().builtin_consent(Session, "/login"))
        .mount("/", routes![login_page, login]);
    let ignited = app.ignite().await.expect("app ignites");
    let served = common::launch(ignited, port).await;
    let base = served.base.clone();
    let out_dir = artifacts();
    let script = dir.join("builtin_consent.mjs");
    let out = rocket::tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(&base)
            .arg(&out_dir)
            .output()
    })
    .await
    .expect("join")
    .expect("node runs");
    drop(served);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}"
    );
    for line in [
        "mouse: landed on the client with a code",
        "keyboard: landed on the client with a code",
        "narrow: no horizontal scrolling at 375 px",
        "deny: access_denied",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    for shot in [
        "builtin-consent.png",
        "builtin-consent-narrow.png",
        "builtin-consent-error.png",
    ] {
        assert!(artifacts().join(shot).exists(), "{shot}");
    }
}
