//! Redirect URIs and client names over HTTP (Rocket local client): strict RFC 3986 parsing
//! without repair and one normalised form at registration, in metadata documents, in the
//! configuration and at `/authorize` and `/token`; loopback in every spelling with any port
//! (RFC 8252 §7.3) but never a port above 65535; names without format characters and not
//! look-alikes of a configured client (UTS #39).

mod common;

use std::sync::Arc;

use rocket::form::Form;
use rocket::http::{ContentType, Cookie, Status};
use rocket::local::asynchronous::{Client as LocalClient, LocalResponse};
use rocket::request::Request;
use rocket::response::content::RawHtml;
use rocket::{post, routes};
use serde_json::{json, Value};
use twisted_oauth2::client_metadata::{ClientMetadataConfig, StaticDocuments};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::endpoint::authorize::PendingAuthorization;
use twisted_oauth2::endpoint::register::RegistrationConfig;
use twisted_oauth2::pkce::s256_challenge;
use twisted_oauth2::rocket::{
    AuthorizeReply, Consent, DecisionForm, OAuth2, OnAuthenticate, PendingRequests,
};
use twisted_oauth2::{AuthorizationServer, OAuthError};

/// A client ID metadata document URL the tests serve from memory.
const DOC_ID: &str = "https://agent.example/client.json";

/// The consent step of the tests: the pending request's fields as plain text.
struct TestConsent;

#[rocket::async_trait]
impl OnAuthenticate for TestConsent {
    async fn on_authenticate(
        &self,
        _req: &Request<'_>,
        p: PendingAuthorization,
    ) -> Result<Consent, OAuthError> {
        Ok(Consent::new(RawHtml(format!(
            "request_id={}\ncsrf_token={}\nredirect_uri={}\n",
            p.request_id, p.csrf_token, p.redirect_uri
        ))))
    }
}

#[post("/decide", data = "<form>")]
async fn decide(form: Form<DecisionForm>, pending: PendingRequests<'_>) -> AuthorizeReply {
    pending.decide(&form, "alice").await
}

fn config() -> ServerConfig {
    let mut cfg = common::config();
    cfg.clients.push(ClientConfig {
        id: "demo-web".into(),
        name: Some("Demo web client".into()),
        redirect_uris: vec!["http://127.0.0.1:9000/callback".into()],
        grant_types: vec!["authorization_code".into()],
        ..Default::default()
    });
    cfg.registration = RegistrationConfig {
        enabled: true,
        rate_limit_per_minute: 0,
        ..Default::default()
    };
    cfg.client_metadata = ClientMetadataConfig {
        enabled: true,
        ..Default::default()
    };
    cfg.allow_insecure_request_debug = true;
    cfg
}

async fn app_with(documents: StaticDocuments) -> LocalClient {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", config()));
    let rocket = rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .clock(Arc::new(FixedClock::at(common::T0)))
                .client_metadata_fetcher(Arc::new(documents))
                .on_authenticate(TestConsent),
        )
        .mount("/", routes![decide]);
    LocalClient::untracked(rocket).await.unwrap()
}

async fn app() -> LocalClient {
    app_with(StaticDocuments::new()).await
}

async fn json(r: LocalResponse<'_>) -> (Status, Value) {
    let status = r.status();
    let body = r.into_string().await.unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn register(c: &LocalClient, body: Value) -> (Status, Value) {
    json(
        c.post("/oauth2/register")
            .header(ContentType::JSON)
            .body(body.to_string())
            .dispatch()
            .await,
    )
    .await
}

async fn register_redirect(c: &LocalClient, uri: &str) -> String {
    let (s, v) = register(c, json!({"redirect_uris": [uri]})).await;
    assert_eq!(s, Status::Created, "{uri:?}: {v}");
    v["client_id"].as_str().unwrap().to_owned()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn authorize_path(client_id: &str, redirect: &str) -> String {
    format!(
        "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=a&state=st\
         &code_challenge={}&code_challenge_method=S256",
        enc(client_id),
        enc(redirect),
        s256_challenge(common::VERIFIER)
    )
}

/// Runs the code flow for `client_id` with `redirect` at `/authorize`, allows, and returns
/// the `Location` of the answer, as sent.
async fn allow(c: &LocalClient, client_id: &str, redirect: &str) -> String {
    let r = c.get(authorize_path(client_id, redirect)).dispatch().await;
    assert_eq!(r.status(), Status::Ok, "{redirect:?} was not accepted");
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
    r.headers().get_one("Location").unwrap().to_owned()
}

fn code_of(location: &str) -> String {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

async fn token(c: &LocalClient, client_id: &str, code: &str, redirect: &str) -> (Status, Value) {
    json(
        c.post("/oauth2/token")
            .header(ContentType::Form)
            .body(format!(
                "grant_type=authorization_code&code={code}&client_id={}&redirect_uri={}&code_verifier={}",
                enc(client_id),
                enc(redirect),
                common::VERIFIER
            ))
            .dispatch()
            .await,
    )
    .await
}

/// What `url::Url::parse` (WHATWG) used to repair into another URL, and ports past 65535.
const NOT_RFC3986: [&str; 10] = [
    "https://a.example/c b",
    "https://a.example\\@evil.example/cb",
    "https:cb",
    "https:///cb",
    "https://a.example/cb\u{1}",
    "https://a.example/\tcb",
    "https://a.example/cb\r\n",
    "https://\u{430}pple.example/cb",
    "http://127.0.0.1:65536/cb",
    "http://127.0.0.1:99999/cb",
];

#[rocket::async_test]
async fn registration_refuses_redirect_uris_that_are_not_rfc3986_absolute_uris() {
    let c = app().await;
    for bad in NOT_RFC3986 {
        let (s, v) = register(&c, json!({"redirect_uris": [bad]})).await;
        assert_eq!(s, Status::BadRequest, "{bad:?} was registered: {v}");
        assert_eq!(v["error"], "invalid_redirect_uri", "{bad:?}");
    }
}

#[rocket::async_test]
async fn registration_stores_and_returns_the_normalised_form_rfc3986_6_2_2() {
    let c = app().await;
    let (s, v) = register(
        &c,
        json!({"redirect_uris": ["HTTPS://App.Example:443/a/./cb?x=%7e", "https://app.example/a/cb?x=~"]}),
    )
    .await;
    assert_eq!(s, Status::Created, "{v}");
    assert_eq!(v["redirect_uris"], json!(["https://app.example/a/cb?x=~"]));
}

#[rocket::async_test]
async fn the_code_goes_to_the_normalised_uri_and_token_compares_normal_forms() {
    let c = app().await;
    let id = register_redirect(&c, "https://app.example/cb").await;
    let sent = "HTTPS://APP.example:443/cb";
    let loc = allow(&c, &id, sent).await;
    assert!(loc.starts_with("https://app.example/cb?code="), "{loc}");
    let (s, v) = token(&c, &id, &code_of(&loc), sent).await;
    assert_eq!(s, Status::Ok, "{v}");
}

#[rocket::async_test]
async fn authorize_shows_a_page_for_a_requested_redirect_uri_that_is_not_rfc3986() {
    // A guard for the strict parse of the requested URI (it passes on the byte-exact
    // matching of before as well): a string the registered one is the repair of matches
    // nothing and is never redirected to.
    let c = app().await;
    let id = register_redirect(&c, "https://a.example/c%20b").await;
    let r = c
        .get(authorize_path(&id, "https://a.example/c b"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
    assert!(r.headers().get_one("Location").is_none());
}

#[rocket::async_test]
async fn loopback_127_1_matches_any_port_like_127_0_0_1_rfc8252_7_3() {
    let c = app().await;
    for (registered, requested) in [
        ("http://127.1/cb", "http://127.1:51004/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb"),
        ("http://[::1]/cb", "http://[::1]:51004/cb"),
    ] {
        let id = register_redirect(&c, registered).await;
        let loc = allow(&c, &id, requested).await;
        assert!(loc.starts_with(&format!("{requested}?")), "{loc}");
        let (s, v) = token(&c, &id, &code_of(&loc), requested).await;
        assert_eq!(s, Status::Ok, "{registered} / {requested}: {v}");
    }
}

#[rocket::async_test]
async fn a_loopback_port_above_65535_matches_nothing() {
    let c = app().await;
    let id = register_redirect(&c, "http://127.0.0.1/cb").await;
    for port in ["65536", "99999", "4294967297"] {
        let r = c
            .get(authorize_path(&id, &format!("http://127.0.0.1:{port}/cb")))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::BadRequest, "port {port}");
        assert!(r.headers().get_one("Location").is_none(), "port {port}");
    }
}

#[rocket::async_test]
async fn client_names_with_format_characters_are_refused() {
    let c = app().await;
    for name in [
        "Good\u{202E}tneilc",
        "Zero\u{200B}width",
        "Iso\u{2066}late\u{2069}",
        "Soft\u{AD}hyphen",
    ] {
        let (s, v) = register(
            &c,
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "client_name": name}),
        )
        .await;
        assert_eq!(s, Status::BadRequest, "{name:?}: {v}");
        assert_eq!(v["error"], "invalid_client_metadata", "{name:?}");
    }
}

#[rocket::async_test]
async fn client_names_that_look_like_a_configured_client_are_refused_uts39() {
    let c = app().await;
    for name in [
        "Demo web client",
        "demo WEB client",
        "D\u{435}mo web client", // Cyrillic е
        "Demo web cIient",       // capital I for l
        "Derno web client",      // rn for m
        "Demo-Web",              // the id
        "SVC",                   // another configured id
    ] {
        let (s, v) = register(
            &c,
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "client_name": name}),
        )
        .await;
        assert_eq!(s, Status::BadRequest, "{name:?}: {v}");
        assert_eq!(v["error"], "invalid_client_metadata", "{name:?}");
    }
    let (s, v) = register(
        &c,
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "client_name": "Café agent"}),
    )
    .await;
    assert_eq!(s, Status::Created, "{v}");
}

fn document(redirect: &str, name: &str) -> Value {
    json!({
        "client_id": DOC_ID,
        "client_name": name,
        "redirect_uris": [redirect],
        "token_endpoint_auth_method": "none",
    })
}

#[rocket::async_test]
async fn metadata_documents_follow_the_same_redirect_and_name_rules() {
    for (redirect, name) in [
        ("https://agent.example/c b", "Agent"),
        ("https:///cb", "Agent"),
        ("https://agent.example\\@evil.example/cb", "Agent"),
        ("http://127.0.0.1/cb", "D\u{435}mo web client"),
        ("http://127.0.0.1/cb", "Agent\u{202E}"),
    ] {
        let c = app_with(StaticDocuments::new().with(DOC_ID, &document(redirect, name))).await;
        let r = c
            .get(authorize_path(DOC_ID, "http://127.0.0.1/cb"))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::BadRequest, "{redirect:?} {name:?}");
        assert!(r.headers().get_one("Location").is_none());
    }
    // A good document: its URIs are normalised and loopback ones match any port.
    let c =
        app_with(StaticDocuments::new().with(DOC_ID, &document("HTTP://127.1/cb", "Agent"))).await;
    let loc = allow(&c, DOC_ID, "http://127.1:4242/cb").await;
    assert!(loc.starts_with("http://127.1:4242/cb?"), "{loc}");
}

#[rocket::async_test]
async fn a_configured_redirect_uri_that_is_not_rfc3986_aborts_launch() {
    let mut cfg = config();
    cfg.clients.push(ClientConfig {
        id: "broken".into(),
        redirect_uris: vec!["https://a.example\\@evil.example/cb".into()],
        grant_types: vec!["authorization_code".into()],
        ..Default::default()
    });
    let e = AuthorizationServer::builder(cfg.clone())
        .build()
        .expect_err("a bad redirect URI is a configuration error")
        .to_string();
    assert!(
        e.contains("client `broken`") && e.contains("not an RFC 3986 absolute URI"),
        "{e}"
    );
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment).attach(OAuth2::fairing());
    let e = LocalClient::untracked(rocket)
        .await
        .expect_err("launch aborted");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
}
