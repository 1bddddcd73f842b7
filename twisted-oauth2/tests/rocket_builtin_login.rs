//! The built-in sign-in through Rocket (`OAuth2::builtin_login`): the form and its headers,
//! login CSRF, wrong passwords, a `next` that leaves the server, throttled attempts, and a
//! sign-in that comes back to the consent page and completes the code flow.

mod common;

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use twisted_oauth2::error::StorageError;
use twisted_oauth2::pkce::s256_challenge;
use twisted_oauth2::rocket::{BuiltinLogin, OAuth2, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use twisted_oauth2::storage::PasswordVerifier;

struct Users;

#[rocket::async_trait]
impl PasswordVerifier for Users {
    async fn verify(&self, user: &str, password: &str) -> Result<Option<String>, StorageError> {
        Ok((user == "alice" && password == "wonderland").then(|| "user-alice".to_owned()))
    }
}

async fn app_with(login: BuiltinLogin) -> Client {
    let mut cfg = common::config();
    cfg.allow_insecure_request_debug = true;
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let consent = twisted_oauth2::rocket::BuiltinConsent::signing_in(login);
    let rocket = rocket::custom(figment).attach(OAuth2::fairing().builtin_consent_with(consent));
    // Tracked: the client keeps cookies like a browser.
    Client::tracked(rocket).await.expect("valid rocket")
}

async fn app() -> Client {
    app_with(BuiltinLogin::new(Users)).await
}

/// The value of the hidden input `name` in `html`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect(name) + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

async fn login_form(app: &Client, next: &str) -> String {
    let r = app
        .get(format!(
            "/oauth2/login?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    r.into_string().await.unwrap()
}

async fn post_login<'c>(app: &'c Client, form: &str) -> LocalResponse<'c> {
    app.post("/oauth2/login")
        .header(ContentType::Form)
        .body(form)
        .dispatch()
        .await
}

fn form(csrf: &str, user: &str, password: &str, next: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "csrf_token={}&username={}&password={}&next={}",
        enc(csrf),
        enc(user),
        enc(password),
        enc(next)
    )
}

#[rocket::async_test]
async fn the_form_has_the_contract_fields_and_refuses_framing() {
    let app = app().await;
    let r = app.get("/oauth2/login?next=%2Fx").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.headers().get_one("X-Frame-Options"), Some("DENY"));
    assert!(r
        .headers()
        .get_one("Content-Security-Policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    let html = r.into_string().await.unwrap();
    assert!(html.contains("action=\"/oauth2/login\""), "{html}");
    assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
    assert_eq!(hidden(&html, "next"), "/x");
    assert!(app.cookies().get_private(LOGIN_CSRF_COOKIE).is_some());
}

#[rocket::async_test]
async fn a_wrong_password_is_401_and_signs_nobody_in() {
    let app = app().await;
    let html = login_form(&app, "/x").await;
    let r = post_login(
        &app,
        &form(&hidden(&html, "csrf_token"), "alice", "nope", "/x"),
    )
    .await;
    assert_eq!(r.status(), Status::Unauthorized);
    let page = r.into_string().await.unwrap();
    assert!(page.contains("Wrong user name or password."), "{page}");
    assert!(app.cookies().get_private(SESSION_COOKIE).is_none());
    // An unknown user gets the same answer.
    let html = login_form(&app, "/x").await;
    let r = post_login(
        &app,
        &form(&hidden(&html, "csrf_token"), "mallory", "x", "/x"),
    )
    .await;
    assert_eq!(r.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn a_sign_in_without_the_forms_csrf_token_is_refused() {
    let app = app().await;
    let _ = login_form(&app, "/x").await;
    // Right password, no token (a cross-site form posting to us).
    let r = post_login(&app, &form("", "alice", "wonderland", "/x")).await;
    assert_eq!(r.status(), Status::Forbidden);
    assert!(app.cookies().get_private(SESSION_COOKIE).is_none());
    // A token that is not the cookie's.
    let r = post_login(
        &app,
        &form("forged-token-value", "alice", "wonderland", "/x"),
    )
    .await;
    assert_eq!(r.status(), Status::Forbidden);
    assert!(app.cookies().get_private(SESSION_COOKIE).is_none());
}

#[rocket::async_test]
async fn a_next_that_leaves_the_server_is_replaced_by_the_root() {
    let app = app().await;
    for evil in ["//evil.example", "https://evil.example/", "/\\evil.example"] {
        let html = login_form(&app, evil).await;
        assert_eq!(hidden(&html, "next"), "/", "{evil}");
        // Even when posted directly.
        let r = post_login(
            &app,
            &form(&hidden(&html, "csrf_token"), "alice", "wonderland", evil),
        )
        .await;
        assert_eq!(r.status(), Status::SeeOther);
        assert_eq!(r.headers().get_one("Location"), Some("/"), "{evil}");
    }
}

#[rocket::async_test]
async fn sign_in_attempts_are_throttled_per_user_before_the_password_is_checked() {
    let app = app_with(BuiltinLogin::new(Users).attempts_per_minute(2, 100)).await;
    for _ in 0..2 {
        let html = login_form(&app, "/").await;
        let r = post_login(
            &app,
            &form(&hidden(&html, "csrf_token"), "alice", "guess", "/"),
        )
        .await;
        assert_eq!(r.status(), Status::Unauthorized);
    }
    let html = login_form(&app, "/").await;
    // Now even the right password waits.
    let r = post_login(
        &app,
        &form(&hidden(&html, "csrf_token"), "Alice", "wonderland", "/"),
    )
    .await;
    assert_eq!(r.status(), Status::TooManyRequests);
    let wait: u64 = r.headers().get_one("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(app.cookies().get_private(SESSION_COOKIE).is_none());
}

#[rocket::async_test]
async fn signing_in_returns_to_the_consent_page_and_completes_the_code_flow() {
    let app = app().await;
    let authorize = format!(
        "/oauth2/authorize?response_type=code&client_id=web&scope=a&state=st&redirect_uri={}&code_challenge={}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(common::REDIRECT.as_bytes()).collect::<String>(),
        s256_challenge(common::VERIFIER)
    );
    let r = app.get(authorize).dispatch().await;
    assert_eq!(r.status(), Status::Found);
    let to_login = r.headers().get_one("Location").unwrap().to_owned();
    assert!(
        to_login.starts_with("/oauth2/login?next=%2Foauth2%2Fconsent"),
        "{to_login}"
    );
    let html = app
        .get(to_login)
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    let next = hidden(&html, "next");
    assert!(next.starts_with("/oauth2/consent?request_id="), "{next}");
    let r = post_login(
        &app,
        &form(&hidden(&html, "csrf_token"), "alice", "wonderland", &next),
    )
    .await;
    assert_eq!(r.status(), Status::SeeOther);
    assert_eq!(r.headers().get_one("Location"), Some(next.as_str()));
    // The session is a private cookie; the consent page now knows the user.
    let consent = app.get(next).dispatch().await;
    assert_eq!(consent.status(), Status::Ok);
    let page = consent.into_string().await.unwrap();
    assert!(
        page.contains("Signed in as <strong>user-alice</strong>"),
        "{page}"
    );
    let decision = format!(
        "request_id={}&csrf_token={}&decision=allow",
        hidden(&page, "request_id"),
        hidden(&page, "csrf_token")
    );
    let r = app
        .post("/oauth2/consent")
        .header(ContentType::Form)
        .body(decision)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::SeeOther);
    let back = r.headers().get_one("Location").unwrap();
    assert!(
        back.starts_with(common::REDIRECT) && back.contains("code="),
        "{back}"
    );
    // Signing out ends the session.
    let r = app.post("/oauth2/logout").dispatch().await;
    assert_eq!(r.status(), Status::SeeOther);
    assert!(app.cookies().get_private(SESSION_COOKIE).is_none());
}
