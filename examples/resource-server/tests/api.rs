//! The example against a fake external issuer (a small Rocket server on a loopback port
//! serving RFC 8414 metadata, a JWKS and RFC 7662 introspection), over Rocket's local
//! client, with a clock the tests move: JWTs accepted and refused (audience, expiry, unknown
//! key, scope) with RFC 6750 challenges naming the RFC 9728 document, a key rotation picked
//! up, the issuer down answered 503 with `Retry-After` and recovered from without restart,
//! and opaque tokens introspected (active, inactive, cached).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rocket::figment::providers::Format as _;
use rocket::form::Form;
use rocket::http::{ContentType, Header as HttpHeader, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{get, post, routes, FromForm, State};
use serde_json::{json, Value};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::rocket::OAuth2;

const KEY_A: &[u8] = include_bytes!("../../../twisted-oauth2/src/jwt/testdata/ed25519-a.pem");
const KEY_B: &[u8] = include_bytes!("../../../twisted-oauth2/src/jwt/testdata/ed25519-b.pem");
const NOW: i64 = 1_800_000_000;
const AUDIENCE: &str = "https://api.example.com/notes";
const METADATA: &str = "https://api.example.com/.well-known/oauth-protected-resource/notes";
/// `rs:rs-secret`, HTTP Basic.
const RS_BASIC: &str = "Basic cnM6cnMtc2VjcmV0";

/// The fake issuer's state: down or up, its key set, its opaque tokens.
#[derive(Default)]
struct Issuer {
    base: String,
    down: AtomicBool,
    jwks: Mutex<String>,
    /// Opaque token → introspection answer.
    opaque: Mutex<HashMap<String, Value>>,
    introspections: AtomicUsize,
}

type Answer = (Status, (ContentType, String));

fn answer(issuer: &Issuer, body: String) -> Answer {
    if issuer.down.load(Ordering::SeqCst) {
        return (Status::ServiceUnavailable, (ContentType::JSON, "{}".into()));
    }
    (Status::Ok, (ContentType::JSON, body))
}

#[get("/.well-known/oauth-authorization-server")]
fn metadata(issuer: &State<Arc<Issuer>>) -> Answer {
    let b = &issuer.base;
    let doc = json!({"issuer": b, "jwks_uri": format!("{b}/jwks"),
                     "introspection_endpoint": format!("{b}/introspect")});
    answer(issuer, doc.to_string())
}

#[get("/jwks")]
fn jwks(issuer: &State<Arc<Issuer>>) -> Answer {
    let body = issuer.jwks.lock().unwrap().clone();
    answer(issuer, body)
}

#[derive(FromForm)]
struct Introspect {
    token: String,
}

struct Basic(bool);

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for Basic {
    type Error = ();
    async fn from_request(
        req: &'r rocket::Request<'_>,
    ) -> rocket::request::Outcome<Self, Self::Error> {
        rocket::request::Outcome::Success(Basic(
            req.headers().get_one("Authorization") == Some(RS_BASIC),
        ))
    }
}

#[post("/introspect", data = "<form>")]
fn introspect(issuer: &State<Arc<Issuer>>, auth: Basic, form: Form<Introspect>) -> Answer {
    if !auth.0 {
        return (Status::Unauthorized, (ContentType::JSON, "{}".into()));
    }
    if !issuer.down.load(Ordering::SeqCst) {
        issuer.introspections.fetch_add(1, Ordering::SeqCst);
    }
    let body = issuer
        .opaque
        .lock()
        .unwrap()
        .get(&form.token)
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    answer(issuer, body.to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn key_set(keys: &[(&[u8], &str)]) -> String {
    let keys = keys
        .iter()
        .map(|(pem, kid)| {
            let mut jwk =
                Jwk::from_encoding_key(&EncodingKey::from_ed_pem(pem).unwrap(), Algorithm::EdDSA)
                    .unwrap();
            jwk.common.key_id = Some((*kid).into());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

/// The fake issuer, serving until the test ends.
async fn start_issuer() -> Arc<Issuer> {
    let port = free_port();
    let issuer = Arc::new(Issuer {
        base: format!("http://127.0.0.1:{port}"),
        jwks: Mutex::new(key_set(&[(KEY_A, "k1")])),
        ..Issuer::default()
    });
    let figment = rocket::figment::Figment::from(rocket::Config::default())
        .merge(("port", port))
        .merge(("address", "127.0.0.1"))
        .merge(("log_level", "off"))
        .merge(("shutdown.ctrlc", false));
    let server = rocket::custom(figment)
        .manage(issuer.clone())
        .mount("/", routes![metadata, jwks, introspect]);
    rocket::tokio::spawn(server.launch());
    for _ in 0..500 {
        if rocket::tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        rocket::tokio::time::sleep(Duration::from_millis(10)).await;
    }
    issuer
}

/// The example with its own Rocket.toml, pointed at `issuer` the way its README says
/// (`allow_http` for a loopback issuer, introspection credentials), on `clock`.
async fn app(issuer: &Issuer, clock: Arc<FixedClock>) -> Client {
    let figment = rocket::Config::figment()
        .merge(
            rocket::figment::providers::Toml::file(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/Rocket.toml"
            ))
            .nested(),
        )
        .merge(("log_level", "off"))
        .merge(("oauth2.resource_server.issuer", issuer.base.clone()))
        .merge(("oauth2.resource_server.allow_http", true))
        .merge((
            "oauth2.resource_server.introspection",
            json!({"client_id": "rs", "client_secret": "rs-secret"}),
        ));
    let fairing = OAuth2::fairing().clock(clock);
    Client::untracked(twisted_oauth2_resource_server::app(figment, fairing))
        .await
        .expect("the example launches")
}

fn jwt(issuer: &Issuer, key: &[u8], kid: &str, claims: Value) -> String {
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".into());
    h.kid = Some(kid.into());
    let mut c = json!({"iss": issuer.base, "sub": "alice", "aud": AUDIENCE, "client_id": "app",
                       "scope": "notes:read notes:write", "exp": NOW + 600, "iat": NOW,
                       "jti": "t-1"});
    for (k, v) in claims.as_object().unwrap() {
        match v {
            Value::Null => drop(c.as_object_mut().unwrap().remove(k)),
            v => c[k] = v.clone(),
        }
    }
    jsonwebtoken::encode(&h, &c, &EncodingKey::from_ed_pem(key).unwrap()).unwrap()
}

async fn get<'c>(client: &'c Client, path: &str, token: Option<&str>) -> LocalResponse<'c> {
    let mut r = client.get(path.to_owned());
    if let Some(t) = token {
        r = r.header(HttpHeader::new("Authorization", format!("Bearer {t}")));
    }
    r.dispatch().await
}

fn challenge(r: &LocalResponse<'_>) -> String {
    r.headers()
        .get_one("WWW-Authenticate")
        .unwrap_or_default()
        .to_owned()
}

/// An RFC 6750 §3 `invalid_token` challenge pointing to the RFC 9728 document.
fn assert_invalid_token(r: &LocalResponse<'_>, what: &str) {
    assert_eq!(r.status(), Status::Unauthorized, "{what}");
    let c = challenge(r);
    assert!(
        c.contains(r#"error="invalid_token""#)
            && c.contains(&format!(r#"resource_metadata="{METADATA}""#)),
        "{what}: {c}"
    );
}

#[rocket::async_test]
async fn a_valid_jwt_reads_and_writes_notes_and_health_is_open() {
    let issuer = start_issuer().await;
    let client = app(&issuer, Arc::new(FixedClock::at(NOW))).await;
    assert_eq!(get(&client, "/health", None).await.status(), Status::Ok);
    let token = jwt(&issuer, KEY_A, "k1", json!({}));
    let r = get(&client, "/notes", Some(&token)).await;
    assert_eq!(r.status(), Status::Ok);
    let body: Value = r.into_json().await.unwrap();
    assert_eq!(
        body,
        json!({"sub": "alice", "client_id": "app", "scope": "notes:read notes:write"})
    );
    let r = client
        .post("/notes")
        .header(HttpHeader::new("Authorization", format!("Bearer {token}")))
        .body("buy milk")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Created);
    let body: Value = r.into_json().await.unwrap();
    assert_eq!(body["note"], "buy milk");
}

#[rocket::async_test]
async fn jwts_for_another_audience_expired_or_signed_with_an_unknown_key_are_invalid_tokens() {
    let issuer = start_issuer().await;
    let client = app(&issuer, Arc::new(FixedClock::at(NOW))).await;
    let other_aud = jwt(
        &issuer,
        KEY_A,
        "k1",
        json!({"aud": "https://api.example.com/other"}),
    );
    assert_invalid_token(&get(&client, "/notes", Some(&other_aud)).await, "audience");
    // Beyond the 60 s leeway; within it the token still counts.
    let expired = jwt(&issuer, KEY_A, "k1", json!({"exp": NOW - 61}));
    assert_invalid_token(&get(&client, "/notes", Some(&expired)).await, "expired");
    let in_leeway = jwt(&issuer, KEY_A, "k1", json!({"exp": NOW - 30}));
    assert_eq!(
        get(&client, "/notes", Some(&in_leeway)).await.status(),
        Status::Ok
    );
    let unknown = jwt(&issuer, KEY_B, "k2", json!({}));
    assert_invalid_token(&get(&client, "/notes", Some(&unknown)).await, "unknown kid");
    // A known kid with another key's signature.
    let forged = jwt(&issuer, KEY_B, "k1", json!({}));
    assert_invalid_token(
        &get(&client, "/notes", Some(&forged)).await,
        "bad signature",
    );
    let other_iss = jwt(&issuer, KEY_A, "k1", json!({"iss": "https://evil.example"}));
    assert_invalid_token(&get(&client, "/notes", Some(&other_iss)).await, "issuer");
}

#[rocket::async_test]
async fn a_token_without_the_scope_gets_403_insufficient_scope() {
    let issuer = start_issuer().await;
    let client = app(&issuer, Arc::new(FixedClock::at(NOW))).await;
    let read_only = jwt(&issuer, KEY_A, "k1", json!({"scope": "notes:read"}));
    assert_eq!(
        get(&client, "/notes", Some(&read_only)).await.status(),
        Status::Ok
    );
    let r = client
        .post("/notes")
        .header(HttpHeader::new(
            "Authorization",
            format!("Bearer {read_only}"),
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Forbidden);
    let c = challenge(&r);
    assert!(
        c.contains(r#"error="insufficient_scope""#) && c.contains(r#"scope="notes:write""#),
        "RFC 6750 §3.1: {c}"
    );
    // Entra-style `scp` lists count as scopes.
    let scp = jwt(
        &issuer,
        KEY_A,
        "k1",
        json!({"scope": null, "scp": ["notes:read"]}),
    );
    assert_eq!(
        get(&client, "/notes", Some(&scp)).await.status(),
        Status::Ok
    );
}

#[rocket::async_test]
async fn no_token_gets_the_challenge_and_the_metadata_names_the_external_issuer() {
    let issuer = start_issuer().await;
    let client = app(&issuer, Arc::new(FixedClock::at(NOW))).await;
    let r = get(&client, "/notes", None).await;
    assert_eq!(r.status(), Status::Unauthorized);
    let c = challenge(&r);
    assert!(
        !c.contains("error=") && c.contains(&format!(r#"resource_metadata="{METADATA}""#)),
        "RFC 6750 §3.1, RFC 9728 §5.1: {c}"
    );
    let r = get(&client, "/.well-known/oauth-protected-resource/notes", None).await;
    assert_eq!(r.status(), Status::Ok);
    let doc: Value = r.into_json().await.unwrap();
    assert_eq!(doc["resource"], AUDIENCE);
    assert_eq!(doc["authorization_servers"], json!([issuer.base]));
    assert_eq!(
        doc["scopes_supported"],
        json!(["notes:read", "notes:write"])
    );
    // Resource-server-only: no token endpoint, no RFC 8414 document of our own.
    let r = client.post("/oauth2/token").dispatch().await;
    assert_eq!(r.status(), Status::NotFound);
}

#[rocket::async_test]
async fn a_key_rotation_at_the_issuer_is_picked_up_without_restart() {
    let issuer = start_issuer().await;
    let client = app(&issuer, Arc::new(FixedClock::at(NOW))).await;
    let old = jwt(&issuer, KEY_A, "k1", json!({}));
    assert_eq!(
        get(&client, "/notes", Some(&old)).await.status(),
        Status::Ok
    );
    *issuer.jwks.lock().unwrap() = key_set(&[(KEY_A, "k1"), (KEY_B, "k2")]);
    let new = jwt(&issuer, KEY_B, "k2", json!({}));
    assert_eq!(
        get(&client, "/notes", Some(&new)).await.status(),
        Status::Ok
    );
    assert_eq!(
        get(&client, "/notes", Some(&old)).await.status(),
        Status::Ok
    );
}

#[rocket::async_test]
async fn the_issuer_down_answers_503_with_retry_after_then_recovers_without_restart() {
    let issuer = start_issuer().await;
    issuer.down.store(true, Ordering::SeqCst);
    let clock = Arc::new(FixedClock::at(NOW));
    // Launch succeeds although the issuer's metadata cannot be read.
    let client = app(&issuer, clock.clone()).await;
    let token = jwt(&issuer, KEY_A, "k1", json!({}));
    let r = get(&client, "/notes", Some(&token)).await;
    assert_eq!(r.status(), Status::ServiceUnavailable);
    let retry: i64 = r
        .headers()
        .get_one("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    issuer.down.store(false, Ordering::SeqCst);
    // Within the delay the issuer is not asked again.
    assert_eq!(
        get(&client, "/notes", Some(&token)).await.status(),
        Status::ServiceUnavailable
    );
    clock.advance(retry);
    assert_eq!(
        get(&client, "/notes", Some(&token)).await.status(),
        Status::Ok
    );
}

fn opaque(issuer: &Issuer, token: &str, answer: Value) {
    issuer.opaque.lock().unwrap().insert(token.into(), answer);
}

#[rocket::async_test]
async fn opaque_tokens_are_introspected_and_the_answers_cached() {
    let issuer = start_issuer().await;
    let clock = Arc::new(FixedClock::at(NOW));
    let client = app(&issuer, clock.clone()).await;
    opaque(
        &issuer,
        "opaque-active",
        json!({"active": true, "iss": issuer.base, "aud": AUDIENCE, "sub": "bob",
               "client_id": "cli", "scope": "notes:read", "exp": NOW + 3600}),
    );
    opaque(
        &issuer,
        "opaque-elsewhere",
        json!({"active": true, "aud": "https://api.example.com/other", "scope": "notes:read",
               "exp": NOW + 3600}),
    );
    let r = get(&client, "/notes", Some("opaque-active")).await;
    assert_eq!(r.status(), Status::Ok);
    let body: Value = r.into_json().await.unwrap();
    assert_eq!(
        body,
        json!({"sub": "bob", "client_id": "cli", "scope": "notes:read"})
    );
    assert_eq!(
        get(&client, "/notes", Some("opaque-active")).await.status(),
        Status::Ok
    );
    assert_eq!(
        issuer.introspections.load(Ordering::SeqCst),
        1,
        "the second request is answered from the cache"
    );
    assert_invalid_token(
        &get(&client, "/notes", Some("opaque-unknown")).await,
        "inactive",
    );
    assert_invalid_token(
        &get(&client, "/notes", Some("opaque-unknown")).await,
        "inactive",
    );
    assert_eq!(
        issuer.introspections.load(Ordering::SeqCst),
        2,
        "an inactive answer is cached briefly too"
    );
    assert_invalid_token(
        &get(&client, "/notes", Some("opaque-elsewhere")).await,
        "another audience",
    );
    // The active answer is reused for cache_ttl (30 s) only: a revocation is seen after it.
    issuer.opaque.lock().unwrap().remove("opaque-active");
    clock.advance(31);
    assert_invalid_token(
        &get(&client, "/notes", Some("opaque-active")).await,
        "revoked at the issuer",
    );
}

#[rocket::async_test]
async fn the_introspection_endpoint_down_answers_503_then_recovers() {
    let issuer = start_issuer().await;
    let clock = Arc::new(FixedClock::at(NOW));
    let client = app(&issuer, clock.clone()).await;
    opaque(
        &issuer,
        "opaque-active",
        json!({"active": true, "aud": [AUDIENCE], "scope": "notes:read", "exp": NOW + 3600}),
    );
    issuer.down.store(true, Ordering::SeqCst);
    let r = get(&client, "/notes", Some("opaque-active")).await;
    assert_eq!(r.status(), Status::ServiceUnavailable);
    let retry: i64 = r
        .headers()
        .get_one("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    let body: Value = r.into_json().await.unwrap_or_default();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    issuer.down.store(false, Ordering::SeqCst);
    clock.advance(retry);
    assert_eq!(
        get(&client, "/notes", Some("opaque-active")).await.status(),
        Status::Ok
    );
}
