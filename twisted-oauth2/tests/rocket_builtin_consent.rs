//! The built-in consent pages through Rocket: the login round trip, grant and deny, CSRF,
//! another browser, single use, escaping of hostile client names, logos and scope
//! descriptions, the page headers, themes and replaced templates.

mod common;

use rocket::http::{ContentType, Cookie, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::request::Request;
use twisted_oauth2::config::ServerConfig;
use twisted_oauth2::pkce::s256_challenge;
use twisted_oauth2::rocket::{
    BuiltinConsent, ConsentPage, ConsentTemplates, ErrorPage, OAuth2, SignedIn, Theme,
};

/// Signed in as the value of the plain cookie `user` (test only).
struct CookieUser;

#[rocket::async_trait]
impl SignedIn for CookieUser {
    async fn user(&self, req: &Request<'_>) -> Option<String> {
        req.cookies().get("user").map(|c| c.value().to_owned())
    }
}

fn config() -> ServerConfig {
    let mut cfg = common::config();
    cfg.allow_insecure_request_debug = true;
    cfg.scope_descriptions
        .insert("a".into(), "Read your clock".into());
    cfg.clients[1].name = Some("Web client".into());
    cfg
}

async fn app_with(cfg: ServerConfig, consent: BuiltinConsent) -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment).attach(OAuth2::fairing().builtin_consent_with(consent));
    Client::untracked(rocket).await.expect("valid rocket")
}

async fn app() -> Client {
    app_with(config(), BuiltinConsent::new(CookieUser, "/login")).await
}

fn authorize(client_id: &str, scope: &str) -> String {
    format!(
        "/oauth2/authorize?response_type=code&client_id={client_id}&scope={scope}&state=st&code_challenge={}&code_challenge_method=S256",
        s256_challenge(common::VERIFIER)
    )
}

/// One browser's cookies.
#[derive(Default)]
struct Browser {
    cookies: Vec<Cookie<'static>>,
}

impl Browser {
    fn signed_in(user: &str) -> Self {
        Browser {
            cookies: vec![Cookie::new("user", user.to_owned())],
        }
    }

    fn keep(&mut self, r: &LocalResponse<'_>) {
        for c in r.cookies().iter() {
            self.cookies.retain(|k| k.name() != c.name());
            self.cookies.push(c.clone().into_owned());
        }
    }

    async fn get(&mut self, app: &Client, uri: &str) -> (Status, Option<String>, String) {
        let r = app
            .get(uri.to_owned())
            .cookies(self.cookies.clone())
            .dispatch()
            .await;
        self.respond(r).await
    }

    async fn post(
        &mut self,
        app: &Client,
        uri: &str,
        form: &[(&str, &str)],
    ) -> (Status, Option<String>, String) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = app
            .post(uri.to_owned())
            .header(ContentType::Form)
            .cookies(self.cookies.clone())
            .body(body)
            .dispatch()
            .await;
        self.respond(r).await
    }

    async fn respond(&mut self, r: LocalResponse<'_>) -> (Status, Option<String>, String) {
        self.keep(&r);
        assert_page_headers(&r);
        let location = r.headers().get_one("Location").map(str::to_owned);
        let status = r.status();
        (status, location, r.into_string().await.unwrap_or_default())
    }
}

fn assert_page_headers(r: &LocalResponse<'_>) {
    let h = r.headers();
    assert_eq!(h.get_one("X-Frame-Options"), Some("DENY"));
    let csp = h.get_one("Content-Security-Policy").unwrap_or("");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h.get_one("Cache-Control"), Some("no-store"));
    assert_eq!(h.get_one("Referrer-Policy"), Some("no-referrer"));
}

/// The value of the hidden input `name` on a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn query_param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[rocket::async_test]
async fn signed_out_user_goes_to_login_and_back_then_allows() {
    let app = app().await;
    let mut browser = Browser::default();
    let (status, location, _) = browser.get(&app, &authorize("web", "a+b")).await;
    assert_eq!(status, Status::Found);
    let location = location.unwrap();
    let next = location
        .strip_prefix("/login?next=")
        .unwrap_or_else(|| panic!("{location}"));
    let next: String = url::form_urlencoded::parse(format!("n={next}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert!(next.starts_with("/oauth2/consent?request_id="), "{next}");
    assert!(
        browser
            .cookies
            .iter()
            .any(|c| c.name() == "twisted_oauth2_ua"),
        "binding cookie set"
    );

    // The app's login signs the user in and redirects to `next`.
    browser.cookies.push(Cookie::new("user", "alice"));
    let (status, _, page) = browser.get(&app, &next).await;
    assert_eq!(status, Status::Ok);
    assert!(
        page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
        "{page}"
    );
    assert!(page.contains("Web client"), "{page}");
    assert!(page.contains("Read your clock"), "{page}");
    assert!(
        page.contains("<code class=\"scope-name\">b</code>"),
        "{page}"
    );
    assert!(
        page.contains("Signed in as <strong>alice</strong>"),
        "{page}"
    );
    assert!(page.contains("<strong>client.example</strong>"), "{page}");
    assert!(!page.contains("Unverified"), "{page}");
    assert!(page.contains("name=\"decision\" value=\"allow\""));
    assert!(page.contains("name=\"decision\" value=\"deny\""));
    assert!(page.contains("action=\"/oauth2/consent\""));

    let rid = hidden(&page, "request_id");
    let csrf = hidden(&page, "csrf_token");
    let (status, location, _) = browser
        .post(
            &app,
            "/oauth2/consent",
            &[
                ("request_id", &rid),
                ("csrf_token", &csrf),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(status, Status::SeeOther);
    let location = location.unwrap();
    assert!(location.starts_with(common::REDIRECT), "{location}");
    assert!(query_param(&location, "code").is_some(), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some("https://as.example")
    );

    // Single use: the same form again gets the "start again" page, no second code.
    let (status, location, page) = browser
        .post(
            &app,
            "/oauth2/consent",
            &[
                ("request_id", &rid),
                ("csrf_token", &csrf),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(status, Status::BadRequest);
    assert!(location.is_none());
    assert!(page.contains("This request is no longer valid"), "{page}");
    assert!(page.contains("--accent:"), "styled error page: {page}");
}

#[rocket::async_test]
async fn signed_in_user_sees_the_page_at_once_and_can_deny() {
    let app = app().await;
    let mut browser = Browser::signed_in("bob");
    let (status, _, page) = browser.get(&app, &authorize("web", "a")).await;
    assert_eq!(status, Status::Ok);
    let (status, location, _) = browser
        .post(
            &app,
            "/oauth2/consent",
            &[
                ("request_id", &hidden(&page, "request_id")),
                ("csrf_token", &hidden(&page, "csrf_token")),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(status, Status::SeeOther);
    let location = location.unwrap();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st"));
}

#[rocket::async_test]
async fn wrong_csrf_and_another_browser_get_error_pages_and_the_request_survives() {
    let app = app().await;
    let mut browser = Browser::signed_in("alice");
    let (_, _, page) = browser.get(&app, &authorize("web", "a")).await;
    let rid = hidden(&page, "request_id");
    let csrf = hidden(&page, "csrf_token");

    let (status, location, body) = browser
        .post(
            &app,
            "/oauth2/consent",
            &[
                ("request_id", &rid),
                ("csrf_token", "forged"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(status, Status::Forbidden);
    assert!(location.is_none());
    assert!(body.contains("CSRF token"), "{body}");
    let (status, _, _) = browser
        .post(
            &app,
            "/oauth2/consent",
            &[("request_id", &rid), ("decision", "allow")],
        )
        .await;
    assert_eq!(status, Status::Forbidden, "missing csrf_token");

    // Another browser (signed in, but without the binding cookie) cannot load or decide.
    let mut other = Browser::signed_in("mallory");
    let (status, _, body) = other
        .get(&app, &format!("/oauth2/consent?request_id={rid}"))
        .await;
    assert_eq!(status, Status::Forbidden);
    assert!(body.contains("another browser"), "{body}");
    let (status, location, _) = other
        .post(
            &app,
            "/oauth2/consent",
            &[
                ("request_id", &rid),
                ("csrf_token", &csrf),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(status, Status::Forbidden);
    assert!(location.is_none());

    // The right browser still decides.
    let (status, location, _) = browser
        .post(
            &app,
            "/oauth2/consent",
            &[
                ("request_id", &rid),
                ("csrf_token", &csrf),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(status, Status::SeeOther);
    assert!(query_param(&location.unwrap(), "code").is_some());
}

#[rocket::async_test]
async fn a_signed_out_decision_goes_back_to_login_and_grants_nothing() {
    let app = app().await;
    let mut browser = Browser::signed_in("alice");
    let (_, _, page) = browser.get(&app, &authorize("web", "a")).await;
    let rid = hidden(&page, "request_id");
    browser.cookies.retain(|c| c.name() != "user");
    let (status, location, _) = browser
        .post(
            &app,
            "/oauth2/consent",
            &[
                ("request_id", &rid),
                ("csrf_token", &hidden(&page, "csrf_token")),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(status, Status::SeeOther);
    assert!(location
        .unwrap()
        .starts_with("/login?next=%2Foauth2%2Fconsent%3Frequest_id%3D"));
}

#[rocket::async_test]
async fn hostile_names_logos_and_descriptions_are_escaped() {
    let mut cfg = config();
    cfg.clients[1].name = Some("<script>alert(1)</script>\"'&".into());
    cfg.clients[1].logo_uri = Some("https://cdn.example/l.png?a=\"><script>x</script>".into());
    cfg.clients[1].verified = Some(false);
    cfg.scope_descriptions
        .insert("b".into(), "<img src=x onerror=alert(2)>".into());
    let app = app_with(cfg, BuiltinConsent::new(CookieUser, "/login")).await;
    let mut browser = Browser::signed_in("<b>eve</b>");
    let (status, _, page) = browser.get(&app, &authorize("web", "a+b")).await;
    assert_eq!(status, Status::Ok);
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(!page.contains("<b>eve"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"),
        "{page}"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{page}"
    );
    assert!(
        page.contains(
            "src=\"https://cdn.example/l.png?a=&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""
        ),
        "{page}"
    );
    assert!(page.contains("Unverified application"), "{page}");
}

#[test]
fn logos_must_be_https() {
    for bad in [
        "http://cdn.example/l.png",
        "data:image/png;base64,AAAA",
        "javascript:alert(1)",
        "https://u:p@cdn.example/l.png",
    ] {
        let mut cfg = config();
        cfg.clients[1].logo_uri = Some(bad.into());
        let built = twisted_oauth2::AuthorizationServer::builder(cfg).build();
        let err = built.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("logo_uri"), "{bad}: {err}");
    }
}

#[rocket::async_test]
async fn error_pages_of_the_authorize_endpoint_are_styled_and_blame_correctly() {
    let app = app().await;
    let mut browser = Browser::signed_in("alice");
    let (status, location, page) = browser.get(&app, &authorize("nobody", "a")).await;
    assert_eq!(status, Status::BadRequest);
    assert!(location.is_none());
    assert!(page.contains("Authorization error"), "{page}");
    assert!(page.contains("unknown client_id"), "{page}");
    assert!(page.contains("--accent:"), "{page}");
    assert!(
        browser
            .cookies
            .iter()
            .all(|c| c.name() != "twisted_oauth2_ua"),
        "no binding cookie on error pages"
    );
    let (status, _, page) = browser.get(&app, "/oauth2/consent?request_id=nope").await;
    assert_eq!(status, Status::BadRequest);
    assert!(page.contains("start again"), "{page}");
}

struct Plain;

impl ConsentTemplates for Plain {
    fn consent_page(&self, p: &ConsentPage<'_>, theme: &Theme) -> String {
        format!(
            "custom consent for {} accent {} rid {} csrf {}",
            twisted_oauth2::rocket::escape_html(p.client_name),
            theme.accent,
            p.request_id,
            p.csrf_token
        )
    }

    fn error_page(&self, p: &ErrorPage<'_>, _theme: &Theme) -> String {
        format!("custom error {}", p.status)
    }

    fn content_security_policy(&self) -> std::borrow::Cow<'static, str> {
        "default-src 'self'".into()
    }
}

#[rocket::async_test]
async fn templates_and_theme_can_be_replaced() {
    let consent = BuiltinConsent::new(CookieUser, "https://id.example/signin?app=x")
        .theme(Theme::with_accent("#047857"))
        .templates(Plain);
    let app = app_with(config(), consent).await;
    let mut browser = Browser::signed_in("alice");
    let (status, _, page) = browser.get(&app, &authorize("web", "a")).await;
    assert_eq!(status, Status::Ok);
    assert!(
        page.starts_with("custom consent for Web client accent #047857"),
        "{page}"
    );
    let r = app.get("/oauth2/consent?request_id=x").dispatch().await;
    assert_eq!(
        r.headers().get_one("Content-Security-Policy"),
        Some("default-src 'self'; frame-ancestors 'none'")
    );
    assert_eq!(r.into_string().await.as_deref(), Some("custom error 400"));

    let mut signed_out = Browser::default();
    let (_, location, _) = signed_out.get(&app, &authorize("web", "a")).await;
    assert!(location
        .unwrap()
        .starts_with("https://id.example/signin?app=x&next=%2Foauth2%2Fconsent"),);
}

#[rocket::async_test]
async fn an_invalid_login_url_aborts_launch() {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", config()));
    let rocket =
        rocket::custom(figment).attach(OAuth2::fairing().builtin_consent(CookieUser, "/log in<>"));
    let Err(e) = rocket.ignite().await else {
        panic!("launched with an invalid login URL");
    };
    // Reading the kind marks the error handled (else Rocket panics on drop).
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
}

#[rocket::async_test]
async fn a_metadata_document_client_shows_its_publisher_a_local_redirect_warning_and_resources() {
    let id = "https://agent.example/oauth/client.json";
    let doc = serde_json::json!({
        "client_id": id,
        "client_name": "Agent",
        "redirect_uris": ["http://127.0.0.1:7777/callback"],
    });
    let mut cfg = config();
    cfg.client_metadata.enabled = true;
    cfg.resources = vec!["https://mcp.example/mcp".into()];
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment).attach(
        OAuth2::fairing()
            .client_metadata_fetcher(std::sync::Arc::new(
                twisted_oauth2::client_metadata::StaticDocuments::new().with(id, &doc),
            ))
            .builtin_consent(CookieUser, "/login"),
    );
    let app = Client::untracked(rocket).await.expect("valid rocket");
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let uri = format!(
        "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=a&state=st&resource={}&code_challenge={}&code_challenge_method=S256",
        enc(id),
        enc("http://127.0.0.1:7777/callback"),
        enc("https://mcp.example/mcp"),
        s256_challenge(common::VERIFIER)
    );
    let mut browser = Browser::signed_in("bob");
    let (status, _, page) = browser.get(&app, &uri).await;
    assert_eq!(status, Status::Ok, "{page}");
    assert!(page.contains("Unverified application"), "{page}");
    assert!(
        page.contains("Published by <strong>agent.example</strong>"),
        "{page}"
    );
    assert!(
        page.contains("The answer goes to a program on this device"),
        "{page}"
    );
    assert!(
        page.contains("<code>https://mcp.example/mcp</code>"),
        "{page}"
    );
    // A configured (verified) client with an https redirect gets none of these notes.
    let (_, _, page) = browser.get(&app, &authorize("web", "a")).await;
    assert!(!page.contains("Published by"));
    assert!(!page.contains("program on this device"));
}
