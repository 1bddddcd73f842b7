//! Open registration that is safe to leave on (issue "Open registration and client metadata
//! documents that are safe to leave on"): each finding of the attack review, over HTTP
//! through the fairing with `rocket::local`. Every test here failed on the code before the
//! fix it names.

mod common;

use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client as LocalClient, LocalResponse};
use rocket::request::Request;
use rocket::response::content::RawHtml;
use serde_json::{json, Value};
use twisted_oauth2::client::SecretDigest;
use twisted_oauth2::config::{RegistrationConfig, ServerConfig};
use twisted_oauth2::endpoint::authorize::PendingAuthorization;
use twisted_oauth2::pkce::s256_challenge;
use twisted_oauth2::rocket::{Consent, OAuth2, OnAuthenticate};
use twisted_oauth2::OAuthError;

const INITIAL_TOKEN: &str = "initial-access-token-for-tests";

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

/// The log of this test binary (installed before any Rocket, which keeps it).
fn capture() -> &'static Capture {
    static LOG: OnceLock<&'static Capture> = OnceLock::new();
    LOG.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        let _ = log::set_logger(c);
        log::set_max_level(log::LevelFilter::Info);
        c
    })
}

struct TestConsent;

#[rocket::async_trait]
impl OnAuthenticate for TestConsent {
    async fn on_authenticate(
        &self,
        _req: &Request<'_>,
        p: PendingAuthorization,
    ) -> Result<Consent, OAuthError> {
        Ok(Consent::new(RawHtml(format!(
            "request_id={}\ncsrf_token={}\n",
            p.request_id, p.csrf_token
        ))))
    }
}

fn config(reg: RegistrationConfig) -> ServerConfig {
    let mut cfg = common::config();
    cfg.allow_insecure_request_debug = true;
    cfg.scopes_supported = Some(vec!["a".into(), "b".into(), "c".into()]);
    cfg.registration = RegistrationConfig {
        enabled: true,
        ..reg
    };
    cfg
}

async fn app(cfg: ServerConfig) -> LocalClient {
    app_with(cfg, OAuth2::fairing()).await
}

async fn app_with(cfg: ServerConfig, fairing: OAuth2) -> LocalClient {
    capture();
    let figment = rocket::Config::figment()
        .merge(("log_level", "normal"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment).attach(fairing.on_authenticate(TestConsent));
    LocalClient::untracked(rocket).await.expect("launches")
}

fn no_limits() -> RegistrationConfig {
    RegistrationConfig {
        rate_limit_per_minute: 0,
        max_registrations_per_address: 0,
        ..Default::default()
    }
}

fn with_initial_token() -> RegistrationConfig {
    RegistrationConfig {
        initial_access_token_sha256: Some(SecretDigest::of(INITIAL_TOKEN).to_hex()),
        ..no_limits()
    }
}

async fn body(r: LocalResponse<'_>) -> Value {
    serde_json::from_str(&r.into_string().await.unwrap_or_default()).unwrap_or(Value::Null)
}

async fn register(c: &LocalClient, meta: Value, initial: bool) -> (Status, Value) {
    let mut r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body(meta.to_string());
    if initial {
        r = r.header(Header::new(
            "Authorization",
            format!("Bearer {INITIAL_TOKEN}"),
        ));
    }
    let r = r.dispatch().await;
    (r.status(), body(r).await)
}

async fn client_credentials(
    c: &LocalClient,
    id: &str,
    secret: &str,
    scope: &str,
) -> (Status, Value) {
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("Authorization", common::basic(id, secret)))
        .body(format!("grant_type=client_credentials&scope={scope}"))
        .dispatch()
        .await;
    (r.status(), body(r).await)
}

fn machine() -> Value {
    json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"})
}

/// Finding 1 (high): open registration handed out `client_credentials` clients, and their
/// tokens were not bounded by the registered scope.
#[rocket::async_test]
async fn open_registration_refuses_client_credentials() {
    let c = app(config(no_limits())).await;
    let (status, v) = register(&c, machine(), false).await;
    assert_eq!(status, Status::BadRequest, "{v}");
    assert_eq!(v["error"], "invalid_client_metadata");
    // What a user approves stays registrable.
    let (status, _) = register(
        &c,
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "grant_types": ["authorization_code", "refresh_token"]}),
        false,
    )
    .await;
    assert_eq!(status, Status::Created);
}

#[rocket::async_test]
async fn a_machine_client_registered_with_an_initial_access_token_is_capped_by_its_scope() {
    let c = app(config(with_initial_token())).await;
    let mut meta = machine();
    meta["scope"] = "a".into();
    let (status, v) = register(&c, meta, true).await;
    assert_eq!(status, Status::Created, "{v}");
    let (id, secret) = (
        v["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().unwrap().to_owned(),
    );
    let (status, t) = client_credentials(&c, &id, &secret, "a%20b").await;
    assert_eq!(status, Status::BadRequest, "wider than registered: {t}");
    assert_eq!(t["error"], "invalid_scope");
    let (status, t) = client_credentials(&c, &id, &secret, "a").await;
    assert_eq!(status, Status::Ok, "{t}");
    assert_eq!(t["scope"], "a");
}

#[rocket::async_test]
async fn open_client_credentials_is_an_explicit_opt_in_and_needs_a_ceiling() {
    let c = app(config(RegistrationConfig {
        open_client_credentials: true,
        ..no_limits()
    }))
    .await;
    // No scope and no default_scope: nothing to cap it with.
    let (status, v) = register(&c, machine(), false).await;
    assert_eq!(status, Status::BadRequest, "{v}");
    assert_eq!(v["error"], "invalid_client_metadata");
    let mut meta = machine();
    meta["scope"] = "b".into();
    let (status, v) = register(&c, meta, false).await;
    assert_eq!(status, Status::Created, "{v}");
    let (id, secret) = (
        v["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        client_credentials(&c, &id, &secret, "a").await.0,
        Status::BadRequest
    );
    assert_eq!(
        client_credentials(&c, &id, &secret, "b").await.0,
        Status::Ok
    );
}

fn peer(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 40000)
}

async fn register_from(c: &LocalClient, from: &str, real_ip: Option<&str>) -> Status {
    let mut r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .remote(peer(from))
        .body(json!({"redirect_uris": ["http://127.0.0.1/cb"]}).to_string());
    if let Some(ip) = real_ip {
        r = r.header(Header::new("X-Real-IP", ip.to_owned()));
    }
    r.dispatch().await.status()
}

/// Finding 2: the limiter keyed on Rocket's `ip_header`, so a fresh `X-Real-IP` per request
/// walked past it.
#[rocket::async_test]
async fn a_flood_with_fresh_x_real_ip_values_is_limited_and_an_honest_address_still_registers() {
    let c = app(config(RegistrationConfig {
        rate_limit_per_minute: 10,
        ..no_limits()
    }))
    .await;
    let mut created = 0;
    for i in 0..200u32 {
        let fake = format!("198.18.{}.{}", i / 250, i % 250 + 1);
        if register_from(&c, "192.0.2.66", Some(&fake)).await == Status::Created {
            created += 1;
        }
    }
    assert_eq!(created, 10, "the peer address is the key, not X-Real-IP");
    assert_eq!(
        register_from(&c, "192.0.2.66", None).await,
        Status::TooManyRequests
    );
    assert_eq!(
        register_from(&c, "203.0.113.7", None).await,
        Status::Created
    );
}

#[rocket::async_test]
async fn behind_a_trusted_proxy_its_client_address_header_is_the_key() {
    let mut cfg = config(RegistrationConfig {
        rate_limit_per_minute: 1,
        ..no_limits()
    });
    cfg.trusted_proxies = vec!["10.0.0.0/8".into()];
    let c = app(cfg).await;
    assert_eq!(
        register_from(&c, "10.0.0.1", Some("203.0.113.1")).await,
        Status::Created
    );
    assert_eq!(
        register_from(&c, "10.0.0.1", Some("203.0.113.2")).await,
        Status::Created
    );
    assert_eq!(
        register_from(&c, "10.0.0.2", Some("203.0.113.1")).await,
        Status::TooManyRequests,
        "the same client through another proxy instance"
    );
    // A peer that is not a trusted proxy cannot pick its address.
    assert_eq!(
        register_from(&c, "192.0.2.9", Some("203.0.113.3")).await,
        Status::Created
    );
    assert_eq!(
        register_from(&c, "192.0.2.9", Some("203.0.113.4")).await,
        Status::TooManyRequests
    );
}

#[rocket::async_test]
async fn registrations_per_address_are_capped_over_the_unused_lifetime() {
    let c = app(config(RegistrationConfig {
        rate_limit_per_minute: 0,
        max_registrations_per_address: 3,
        ..Default::default()
    }))
    .await;
    for _ in 0..3 {
        assert_eq!(register_from(&c, "192.0.2.10", None).await, Status::Created);
    }
    assert_eq!(
        register_from(&c, "192.0.2.10", None).await,
        Status::TooManyRequests
    );
    assert_eq!(register_from(&c, "192.0.2.11", None).await, Status::Created);
}

fn authorize_query(client_id: &str, redirect: &str, extra: &str) -> String {
    format!(
        "/oauth2/authorize?client_id={}&redirect_uri={}&state=s{extra}",
        url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>(),
    )
}

/// Finding 3: an unverified client's errors were redirected to its own URIs before anyone
/// signed in: an open redirector on the server's origin.
#[rocket::async_test]
async fn an_unverified_clients_errors_are_shown_not_redirected_rfc9700_4_11_2() {
    let c = app(config(no_limits())).await;
    let phish = "https://evil.example/phish";
    let (status, v) = register(&c, json!({"redirect_uris": [phish]}), false).await;
    assert_eq!(status, Status::Created);
    let id = v["client_id"].as_str().unwrap().to_owned();
    let challenge = format!(
        "&code_challenge={}&code_challenge_method=S256",
        s256_challenge(common::VERIFIER)
    );
    for extra in [
        format!("&response_type=code&scope=nope{challenge}"),
        format!("&response_type=tokenz&scope=a{challenge}"),
        "&response_type=code&scope=a".to_owned(),
    ] {
        let r = c.get(authorize_query(&id, phish, &extra)).dispatch().await;
        assert_eq!(r.status(), Status::BadRequest, "{extra}");
        assert_eq!(r.headers().get_one("Location"), None, "{extra}");
    }
    // A valid request reaches the consent step as before.
    let ok = format!("&response_type=code&scope=a{challenge}");
    let r = c.get(authorize_query(&id, phish, &ok)).dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    // A configured (verified) client keeps RFC 6749 §4.1.2.1 error redirects.
    let r = c
        .get(authorize_query(
            "web",
            common::REDIRECT,
            &format!("&response_type=code&scope=nope{challenge}"),
        ))
        .dispatch()
        .await;
    assert!(matches!(r.status().code, 302 | 303), "{}", r.status());
    assert!(r
        .headers()
        .get_one("Location")
        .is_some_and(|l| l.starts_with(common::REDIRECT) && l.contains("error=invalid_scope")));
}

/// Finding 5: a client registered for `client_secret_basic` could authenticate with
/// `client_secret_post`.
#[rocket::async_test]
async fn the_registered_token_endpoint_auth_method_is_enforced() {
    let c = app(config(with_initial_token())).await;
    let mut meta = machine();
    meta["scope"] = "a".into();
    let (_, v) = register(&c, meta, true).await;
    let (id, secret) = (
        v["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().unwrap().to_owned(),
    );
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .body(format!(
            "grant_type=client_credentials&client_id={id}&client_secret={secret}"
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(body(r).await["error"], "invalid_client");
    assert_eq!(
        client_credentials(&c, &id, &secret, "a").await.0,
        Status::Ok
    );
}

/// Finding 5: registration access tokens never rotated (RFC 7592 §3).
#[rocket::async_test]
async fn the_registration_access_token_rotates_on_update_rfc7592_3() {
    let c = app(config(no_limits())).await;
    let (_, v) = register(&c, json!({"redirect_uris": ["http://127.0.0.1/cb"]}), false).await;
    let path = url::Url::parse(v["registration_client_uri"].as_str().unwrap())
        .unwrap()
        .path()
        .to_owned();
    let old = v["registration_access_token"].as_str().unwrap().to_owned();
    let bearer = |t: &str| Header::new("Authorization", format!("Bearer {t}"));
    let r = c
        .put(path.clone())
        .header(bearer(&old))
        .header(ContentType::JSON)
        .body(json!({"redirect_uris": ["http://127.0.0.1/cb2"]}).to_string())
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let new = body(r).await["registration_access_token"]
        .as_str()
        .expect("a new registration access token")
        .to_owned();
    assert_ne!(new, old);
    let r = c.get(path.clone()).header(bearer(&old)).dispatch().await;
    assert_eq!(r.status(), Status::Unauthorized, "the old token is spent");
    let r = c.get(path).header(bearer(&new)).dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(
        body(r).await["redirect_uris"],
        json!(["http://127.0.0.1/cb2"])
    );
}

/// Finding 5: every page that refuses framing made Rocket's Shield log "response contains
/// a 'X-Frame-Options' header" at the release level.
#[rocket::async_test]
async fn pages_refuse_framing_without_a_shield_warning() {
    let c = app(config(no_limits())).await;
    let challenge = format!(
        "&response_type=code&scope=a&code_challenge={}&code_challenge_method=S256",
        s256_challenge(common::VERIFIER)
    );
    let r = c
        .get(authorize_query("web", common::REDIRECT, &challenge))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let xfo: Vec<&str> = r.headers().get("X-Frame-Options").collect();
    assert_eq!(xfo, ["DENY"]);
    // An error page too.
    let r = c.get("/oauth2/authorize?client_id=nobody").dispatch().await;
    assert_eq!(
        r.headers().get("X-Frame-Options").collect::<Vec<_>>(),
        ["DENY"]
    );
    let warned = capture()
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("X-Frame-Options") && l.starts_with("WARN"));
    assert!(!warned, "Shield warned about X-Frame-Options");
}

/// Item 1: a flood of registrations that never take a token cannot grow the store: beyond
/// `max_unused_clients` the oldest unused ones go.
#[rocket::async_test]
async fn unused_registrations_beyond_the_cap_are_deleted_oldest_first() {
    let clock = std::sync::Arc::new(twisted_oauth2::clock::FixedClock::at(common::T0));
    let cfg = config(RegistrationConfig {
        max_unused_clients: 3,
        ..no_limits()
    });
    let c = app_with(cfg, OAuth2::fairing().clock(clock.clone())).await;
    let mut registered = Vec::new();
    for _ in 0..5 {
        clock.advance(1);
        let (status, v) =
            register(&c, json!({"redirect_uris": ["http://127.0.0.1/cb"]}), false).await;
        assert_eq!(status, Status::Created);
        let path = url::Url::parse(v["registration_client_uri"].as_str().unwrap())
            .unwrap()
            .path()
            .to_owned();
        registered.push((
            path,
            v["registration_access_token"].as_str().unwrap().to_owned(),
        ));
    }
    let mut alive = Vec::new();
    for (path, token) in &registered {
        let r = c
            .get(path.clone())
            .header(Header::new("Authorization", format!("Bearer {token}")))
            .dispatch()
            .await;
        alive.push(r.status() == Status::Ok);
    }
    assert_eq!(alive, [false, false, true, true, true]);
}

/// docs/registration.md's proxy setup, as written, is a configuration the server takes and
/// that believes nginx's `X-Real-IP` only from nginx.
#[rocket::async_test]
async fn the_documented_proxy_setup_parses_and_trusts_only_the_proxy() {
    use rocket::figment::providers::{Format, Toml};
    let doc = include_str!("../../docs/registration.md");
    let section = &doc[doc
        .find("## Leaving registration open on the Internet")
        .expect("the section")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let toml = &section[start..start + section[start..].find("```").unwrap()];
    // Only the snippet (not the repository's Rocket.toml).
    let figment = rocket::figment::Figment::from(Toml::string(toml).nested())
        .merge(("oauth2.issuer", "https://as.example"))
        .merge(("oauth2.registration.enabled", true))
        .merge(("oauth2.registration.rate_limit_per_minute", 1));
    assert_eq!(
        figment.extract_inner::<bool>("ip_header").ok(),
        Some(false),
        "{toml}"
    );
    let cfg: ServerConfig = figment
        .extract_inner("oauth2")
        .expect("the documented keys");
    let server = twisted_oauth2::AuthorizationServer::builder(cfg)
        .build()
        .unwrap();
    let nginx = Some("127.0.0.1".parse().unwrap());
    assert_eq!(
        server.client_address(nginx, ["203.0.113.8"]),
        Some("203.0.113.8".parse().unwrap())
    );
    let stranger = Some("198.51.100.3".parse().unwrap());
    assert_eq!(server.client_address(stranger, ["203.0.113.8"]), stranger);
}

/// `application_type` (SEP-837): accepted, echoed, and deciding the redirect rules (it was
/// ignored before, so a `web` client could register plain-HTTP loopback redirects).
#[rocket::async_test]
async fn application_type_is_echoed_and_decides_the_redirect_rules() {
    let c = app(config(no_limits())).await;
    for (kind, uri, ok) in [
        ("web", "https://app.example/cb", true),
        ("web", "com.example.app:/cb", false),
        // Loopback is allowed to web clients only under the debug override (on here).
        ("web", "http://127.0.0.1/cb", true),
        ("native", "http://127.0.0.1/cb", true),
        ("native", "https://app.example/cb", false),
        ("native", "com.example.app:/cb", true),
    ] {
        let (status, v) = register(
            &c,
            json!({"redirect_uris": [uri], "application_type": kind}),
            false,
        )
        .await;
        if ok {
            assert_eq!(status, Status::Created, "{kind} {uri}: {v}");
            assert_eq!(v["application_type"], kind);
        } else {
            assert_eq!(status, Status::BadRequest, "{kind} {uri}");
            assert_eq!(v["error"], "invalid_redirect_uri");
        }
    }
    let (status, v) = register(
        &c,
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "desktop"}),
        false,
    )
    .await;
    assert_eq!(status, Status::BadRequest);
    assert_eq!(v["error"], "invalid_client_metadata");
    // Without it, the policy is as before (and nothing is echoed).
    let (status, v) = register(&c, json!({"redirect_uris": ["http://127.0.0.1/cb"]}), false).await;
    assert_eq!(status, Status::Created);
    assert!(v.get("application_type").is_none());
}
