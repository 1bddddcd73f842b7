//! Adapter tests of the authorization endpoint and the consent decision through Rocket:
//! error pages vs redirects, anti-framing headers, browser binding, CSRF, single use,
//! expiry.

mod common;

use std::sync::Arc;

use rocket::form::Form;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::request::Request;
use rocket::response::content::RawHtml;
use rocket::{post, routes};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::endpoint::authorize::PendingAuthorization;
use twisted_oauth2::pkce::s256_challenge;
use twisted_oauth2::rocket::{
    AuthorizeReply, Consent, DecisionForm, OAuth2, OnAuthenticate, PendingRequests,
};
use twisted_oauth2::{ErrorCode, OAuthError};

/// Shows a page with the handle and CSRF token; refuses the scope `forbidden`.
struct TestConsent;

#[rocket::async_trait]
impl OnAuthenticate for TestConsent {
    async fn on_authenticate(
        &self,
        _req: &Request<'_>,
        p: PendingAuthorization,
    ) -> Result<Consent, OAuthError> {
        if p.scope.contains("c") {
            return Err(OAuthError::with_description(
                ErrorCode::AccessDenied,
                "scope c is not offered",
            ));
        }
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

struct App {
    client: Client,
    clock: Arc<FixedClock>,
}

async fn app() -> App {
    let clock = Arc::new(FixedClock::at(common::T0));
    let mut cfg = common::config();
    cfg.allow_insecure_request_debug = true;
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .clock(clock.clone())
                .on_authenticate(TestConsent),
        )
        .mount("/", routes![decide]);
    App {
        client: Client::untracked(rocket).await.unwrap(),
        clock,
    }
}

fn authorize_query(extra: &str) -> String {
    format!(
        "/oauth2/authorize?response_type=code&client_id=web&scope=a&state=st&code_challenge={}&code_challenge_method=S256{extra}",
        s256_challenge(common::VERIFIER)
    )
}

/// One browser: its own cookies.
struct Browser {
    cookies: Vec<Cookie<'static>>,
}

impl Browser {
    fn new() -> Self {
        Browser { cookies: vec![] }
    }

    fn keep(&mut self, r: &LocalResponse<'_>) {
        for c in r.cookies().iter() {
            self.cookies.retain(|k| k.name() != c.name());
            self.cookies.push(c.clone().into_owned());
        }
    }

    async fn start(&mut self, app: &App, extra: &str) -> (Status, String, String) {
        let r = app
            .client
            .get(authorize_query(extra))
            .cookies(self.cookies.clone())
            .dispatch()
            .await;
        self.keep(&r);
        assert_eq!(r.status(), Status::Ok);
        assert_eq!(r.headers().get_one("X-Frame-Options"), Some("DENY"));
        assert_eq!(
            r.headers().get_one("Content-Security-Policy"),
            Some("frame-ancestors 'none'")
        );
        assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
        let body = r.into_string().await.unwrap();
        let field = |name: &str| {
            body.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        (Status::Ok, field("request_id"), field("csrf_token"))
    }

    async fn decide<'c>(
        &self,
        app: &'c App,
        rid: &str,
        csrf: &str,
        decision: &str,
    ) -> LocalResponse<'c> {
        app.client
            .post("/decide")
            .header(ContentType::Form)
            .cookies(self.cookies.clone())
            .body(format!(
                "request_id={rid}&csrf_token={csrf}&decision={decision}"
            ))
            .dispatch()
            .await
    }
}

fn location_param(r: &LocalResponse<'_>, name: &str) -> Option<String> {
    let loc = r.headers().get_one("Location")?;
    url::Url::parse(loc)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[rocket::async_test]
async fn grant_redirects_303_with_code_state_and_iss_and_the_code_redeems() {
    let app = app().await;
    let mut b = Browser::new();
    let (_, rid, csrf) = b.start(&app, "").await;
    assert!(
        b.cookies
            .iter()
            .any(|c| c.name() == twisted_oauth2::rocket::BINDING_COOKIE),
        "binding cookie set"
    );
    let r = b.decide(&app, &rid, &csrf, "allow").await;
    assert_eq!(r.status(), Status::SeeOther);
    assert_eq!(location_param(&r, "state").as_deref(), Some("st"));
    assert_eq!(
        location_param(&r, "iss").as_deref(),
        Some("https://as.example")
    );
    let code = location_param(&r, "code").unwrap();
    assert!(r
        .headers()
        .get_one("Location")
        .unwrap()
        .starts_with(common::REDIRECT));
    let t = app
        .client
        .post("/oauth2/token")
        .header(ContentType::Form)
        .body(format!(
            "grant_type=authorization_code&code={code}&client_id=web&code_verifier={}",
            common::VERIFIER
        ))
        .dispatch()
        .await;
    assert_eq!(t.status(), Status::Ok);
}

#[rocket::async_test]
async fn deny_redirects_access_denied() {
    let app = app().await;
    let mut b = Browser::new();
    let (_, rid, csrf) = b.start(&app, "").await;
    let r = b.decide(&app, &rid, &csrf, "deny").await;
    assert_eq!(r.status(), Status::SeeOther);
    assert_eq!(
        location_param(&r, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(location_param(&r, "state").as_deref(), Some("st"));
}

#[rocket::async_test]
async fn another_cookie_jar_cannot_decide() {
    let app = app().await;
    let mut alice = Browser::new();
    let (_, rid, csrf) = alice.start(&app, "").await;
    let mut mallory = Browser::new();
    let _ = mallory.start(&app, "").await; // mallory has a binding cookie of her own
    let r = mallory.decide(&app, &rid, &csrf, "allow").await;
    assert_eq!(r.status(), Status::Forbidden);
    assert_eq!(r.headers().get_one("X-Frame-Options"), Some("DENY"));
    assert!(r.headers().get_one("Location").is_none());
    let r = Browser::new().decide(&app, &rid, &csrf, "allow").await;
    assert_eq!(r.status(), Status::Forbidden, "no cookie at all");
    // Alice can still decide.
    assert_eq!(
        alice.decide(&app, &rid, &csrf, "allow").await.status(),
        Status::SeeOther
    );
}

#[rocket::async_test]
async fn decision_without_csrf_token_is_refused() {
    let app = app().await;
    let mut b = Browser::new();
    let (_, rid, csrf) = b.start(&app, "").await;
    assert_eq!(
        b.decide(&app, &rid, "", "allow").await.status(),
        Status::Forbidden
    );
    assert_eq!(
        b.decide(&app, &rid, "guess", "allow").await.status(),
        Status::Forbidden
    );
    let r = app
        .client
        .post("/decide")
        .header(ContentType::Form)
        .cookies(b.cookies.clone())
        .body(format!("request_id={rid}&decision=allow"))
        .dispatch()
        .await;
    assert_ne!(r.status(), Status::SeeOther, "missing field never grants");
    assert_eq!(
        b.decide(&app, &rid, &csrf, "allow").await.status(),
        Status::SeeOther
    );
}

#[rocket::async_test]
async fn reused_and_expired_handles_fail_cleanly() {
    let app = app().await;
    let mut b = Browser::new();
    let (_, rid, csrf) = b.start(&app, "").await;
    assert_eq!(
        b.decide(&app, &rid, &csrf, "allow").await.status(),
        Status::SeeOther
    );
    let r = b.decide(&app, &rid, &csrf, "allow").await;
    assert_eq!(r.status(), Status::BadRequest);
    assert!(r
        .into_string()
        .await
        .unwrap()
        .contains("unknown, expired or already decided"));

    let (_, rid, csrf) = b.start(&app, "").await;
    app.clock.advance(600);
    let r = b.decide(&app, &rid, &csrf, "allow").await;
    assert_eq!(r.status(), Status::BadRequest);
    let r = b.decide(&app, "garbage%FF", "x", "deny").await;
    assert!(r.status() == Status::BadRequest || r.status() == Status::UnprocessableEntity);
}

#[rocket::async_test]
async fn client_and_redirect_errors_are_pages_not_redirects() {
    let app = app().await;
    for q in [
        "/oauth2/authorize?response_type=code&scope=a",
        "/oauth2/authorize?response_type=code&client_id=nobody",
        "/oauth2/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2F",
    ] {
        let r = app.client.get(q).dispatch().await;
        assert_eq!(r.status(), Status::BadRequest, "{q}");
        assert!(r.headers().get_one("Location").is_none());
        assert_eq!(r.headers().get_one("X-Frame-Options"), Some("DENY"));
        assert_eq!(r.content_type(), Some(ContentType::HTML));
    }
}

#[rocket::async_test]
async fn later_errors_are_302_redirects_with_state_and_iss() {
    let app = app().await;
    let r = app
        .client
        .get("/oauth2/authorize?response_type=code&client_id=web&scope=a&state=s%20p")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Found);
    assert_eq!(
        location_param(&r, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(location_param(&r, "state").as_deref(), Some("s p"));
    assert_eq!(
        location_param(&r, "iss").as_deref(),
        Some("https://as.example")
    );
}

#[rocket::async_test]
async fn consent_hook_rejection_is_redirected_and_drops_the_pending_request() {
    let app = app().await;
    let r = app
        .client
        .get(format!(
            "/oauth2/authorize?response_type=code&client_id=web&scope=c&state=st&code_challenge={}&code_challenge_method=S256",
            s256_challenge(common::VERIFIER)
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Found);
    assert_eq!(
        location_param(&r, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        location_param(&r, "error_description").as_deref(),
        Some("scope c is not offered")
    );
    let state = app
        .client
        .rocket()
        .state::<twisted_oauth2::rocket::OAuth2State>()
        .unwrap();
    let _ = state;
}

#[rocket::async_test]
async fn authorization_request_by_form_post_is_accepted() {
    let app = app().await;
    let r = app
        .client
        .post("/oauth2/authorize")
        .header(ContentType::Form)
        .body(format!(
            "response_type=code&client_id=web&scope=a&code_challenge={}&code_challenge_method=S256",
            s256_challenge(common::VERIFIER)
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let r = app
        .client
        .post("/oauth2/authorize")
        .header(ContentType::JSON)
        .header(Header::new("X", "y"))
        .body("{}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
}

// --- hardening: what the user is told, what the binding cookie accepts, bounds -------------

async fn page_text(r: LocalResponse<'_>) -> String {
    r.into_string().await.unwrap_or_default()
}

#[rocket::async_test]
async fn stale_requests_tell_the_user_to_start_again_without_blaming_the_client() {
    let app = app().await;
    let mut b = Browser::new();
    let (_, rid, csrf) = b.start(&app, "").await;
    assert_eq!(
        b.decide(&app, &rid, &csrf, "allow").await.status(),
        Status::SeeOther
    );
    let used = page_text(b.decide(&app, &rid, &csrf, "allow").await).await;
    let (_, rid2, csrf2) = b.start(&app, "").await;
    let foreign = page_text(Browser::new().decide(&app, &rid2, &csrf2, "allow").await).await;
    app.clock.advance(600);
    let expired = page_text(b.decide(&app, &rid2, &csrf2, "allow").await).await;
    for (what, page) in [("used", used), ("foreign", foreign), ("expired", expired)] {
        assert!(page.contains("start again"), "{what}: {page}");
        assert!(
            !page.contains("application that sent you here made"),
            "{what} blames the client: {page}"
        );
    }
    // A bad request from the client still says so.
    let r = app
        .client
        .get("/oauth2/authorize?response_type=code&client_id=nobody")
        .dispatch()
        .await;
    assert!(page_text(r)
        .await
        .contains("application that sent you here made a request"));
}

#[rocket::async_test]
async fn decision_post_missing_csrf_token_gets_the_library_page_not_a_422() {
    let app = app().await;
    let mut b = Browser::new();
    let (_, rid, _) = b.start(&app, "").await;
    for body in [
        format!("request_id={rid}&decision=allow"),
        "decision=allow".to_owned(),
        String::new(),
    ] {
        let r = app
            .client
            .post("/decide")
            .header(ContentType::Form)
            .cookies(b.cookies.clone())
            .body(body.clone())
            .dispatch()
            .await;
        assert!(
            r.status() == Status::Forbidden || r.status() == Status::BadRequest,
            "{body}: {}",
            r.status()
        );
        assert_eq!(
            r.headers().get_one("X-Frame-Options"),
            Some("DENY"),
            "{body}"
        );
        assert!(page_text(r).await.contains("start again"), "{body}");
    }
}

#[rocket::async_test]
async fn binding_cookie_accepts_only_values_the_server_issued() {
    let app = app().await;
    // A value of the right shape, chosen by an attacker and planted in the victim's browser.
    let planted = Cookie::new(
        twisted_oauth2::rocket::BINDING_COOKIE,
        "planted-by-mallory-0123456789abcdefABCDEF_-",
    );
    let r = app
        .client
        .get(authorize_query(""))
        .cookie(planted.clone())
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let issued = r
        .cookies()
        .get(twisted_oauth2::rocket::BINDING_COOKIE)
        .map(|c| c.value().to_owned())
        .expect("the planted value is replaced by an issued one");
    assert_ne!(issued, planted.value());
    let body = page_text(r).await;
    let field = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    // Mallory, holding only her planted value, cannot decide the request.
    let r = app
        .client
        .post("/decide")
        .header(ContentType::Form)
        .cookie(planted)
        .body(format!(
            "request_id={}&csrf_token={}&decision=allow",
            field("request_id"),
            field("csrf_token")
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn binding_cookie_is_host_prefixed_secure_httponly_lax_over_tls_and_never_set_by_error_pages()
{
    let clock = Arc::new(FixedClock::at(common::T0));
    let mut cfg = common::config();
    cfg.trusted_proxy_header = Some("X-Forwarded-Proto".into());
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket =
        rocket::custom(figment).attach(OAuth2::fairing().clock(clock).on_authenticate(TestConsent));
    let client = Client::untracked(rocket).await.unwrap();
    let r = client
        .get(authorize_query(""))
        .header(Header::new("X-Forwarded-Proto", "https"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let set: Vec<String> = r.headers().get("Set-Cookie").map(str::to_owned).collect();
    let c = set
        .iter()
        .find(|c| c.starts_with("__Host-twisted_oauth2_ua="))
        .unwrap_or_else(|| panic!("{set:?}"));
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(c.contains(attr), "{attr} missing: {c}");
    }
    assert!(!c.contains("Domain"), "{c}");
    for q in [
        "/oauth2/authorize?response_type=code&client_id=nobody".to_owned(),
        format!("/oauth2/authorize?pad={}", "x".repeat(9000)),
    ] {
        let r = client
            .get(q.clone())
            .header(Header::new("X-Forwarded-Proto", "https"))
            .dispatch()
            .await;
        assert!(r.status().code >= 400, "{q}");
        assert!(r.headers().get_one("Set-Cookie").is_none(), "{q}");
    }
}

#[rocket::async_test]
async fn authorize_get_query_is_capped_like_the_form_body() {
    let app = app().await;
    let r = app
        .client
        .get(format!(
            "{}&pad={}",
            authorize_query(""),
            "x".repeat(8 * 1024)
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::UriTooLong);
    assert_eq!(r.content_type(), Some(ContentType::HTML));
    assert!(r.headers().get_one("Location").is_none());
    let r = app
        .client
        .post("/oauth2/authorize")
        .header(ContentType::Form)
        .body(format!("client_id=web&pad={}", "x".repeat(17 * 1024)))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::PayloadTooLarge);
}

#[rocket::async_test]
async fn a_flood_of_authorization_requests_is_bounded_and_answered_with_a_clear_page() {
    let clock = Arc::new(FixedClock::at(common::T0));
    let mut cfg = common::config();
    cfg.allow_insecure_request_debug = true;
    cfg.max_pending_requests = 50;
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket =
        rocket::custom(figment).attach(OAuth2::fairing().clock(clock).on_authenticate(TestConsent));
    let client = Client::untracked(rocket).await.unwrap();
    let state = "s".repeat(2048);
    let mut full = 0;
    for _ in 0..300 {
        // No cookie: every request looks like a new browser.
        let r = client
            .get(format!(
                "{}&state={state}",
                authorize_query("").replace("&state=st", "")
            ))
            .dispatch()
            .await;
        if r.status() == Status::ServiceUnavailable {
            full += 1;
            assert_eq!(r.headers().get_one("X-Frame-Options"), Some("DENY"));
            assert!(r.headers().get_one("Set-Cookie").is_none());
            assert!(page_text(r).await.contains("try again"));
        } else {
            assert_eq!(r.status(), Status::Ok);
        }
    }
    assert_eq!(full, 250);
    let server = &client
        .rocket()
        .state::<twisted_oauth2::rocket::OAuth2State>()
        .unwrap()
        .server()
        .unwrap();
    assert_eq!(server.pending_count(), 50);
}
