//! Protocol tests of the `jwt` access-token format (RFC 9068), without a server: issuance and
//! its claims, validation and algorithm confusion, revocation (the `jti` denylist, grants,
//! two instances on one store and one channel), introspection, refresh, and the stateless
//! option. (In the end-to-end crate, whose dependencies turn the `jwt` feature on; the
//! fixtures are the protocol tests' own.)

#[path = "../../twisted-oauth2/tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::config::{ServerConfig, SigningKeyConfig};
use twisted_oauth2::endpoint::introspect::{self, IntrospectRequest};
use twisted_oauth2::endpoint::revoke::{self, RevokeRequest};
use twisted_oauth2::error::StorageError;
use twisted_oauth2::format::FormatKeys;
use twisted_oauth2::jwt::KeyRing;
use twisted_oauth2::storage::cache::{Revocation, RevocationChannel, RevocationSink};
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::{AccessTokenStore, GrantId, RevokedJtiStore, Stores, TokenRecord};
use twisted_oauth2::token::{RandomTokenGenerator, TokenDigest};
use twisted_oauth2::AuthorizationServer;

/// The test's signing key (Ed25519), also used to forge tokens the server must refuse.
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIORjm8gqi6ZZclVcm+p3kmDs+erA686RYse/qCphJfqa
-----END PRIVATE KEY-----
";
/// A key the server does not publish.
const OTHER_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIFsUCiJJlhq9fWVV9IWRib0mlCFb8hVU9puHHJoooRHY
-----END PRIVATE KEY-----
";

fn jwt_config() -> ServerConfig {
    let mut cfg = config();
    for c in &mut cfg.clients {
        if c.id == "svc" || c.id == "app" {
            c.access_token_format = Some("jwt".into());
        }
        if c.id == "app" {
            c.introspect = true;
        }
    }
    cfg.token_leeway = 30;
    cfg.signing_keys.enabled = true;
    cfg.signing_keys.keys = vec![SigningKeyConfig {
        pem: Some(KEY_PEM.into()),
        kid: Some("test-key".into()),
        ..Default::default()
    }];
    cfg
}

/// The server's keys: [`KEY_PEM`] signs (configured in `signing_keys`).
fn ring(cfg: &ServerConfig, clock: Arc<FixedClock>) -> KeyRing {
    KeyRing::from_config(cfg, clock).expect("the configured key")
}

struct Jwt {
    server: Arc<AuthorizationServer>,
    clock: Arc<FixedClock>,
    stores: Stores,
}

async fn server_on(cfg: ServerConfig, stores: Stores, channel: Option<Arc<MemChannel>>) -> Jwt {
    let clock = Arc::new(FixedClock::at(T0));
    let keys = FormatKeys::new(ring(&cfg, clock.clone()));
    let mut b = AuthorizationServer::builder(cfg)
        .clock(clock.clone())
        // Random values: several servers share one store in some tests.
        .generator(Arc::new(RandomTokenGenerator))
        .stores(stores.clone())
        .format_keys(keys);
    if let Some(c) = channel {
        b = b.revocation_channel(c);
    }
    let server = b.build_connected().await.expect("valid test config");
    Jwt {
        server: Arc::new(server),
        clock,
        stores,
    }
}

fn memory_stores() -> Stores {
    Stores::builder()
        .backend(Arc::new(MemoryStore::new()))
        .build()
        .expect("memory stores")
}

async fn jwt_server() -> Jwt {
    server_on(jwt_config(), memory_stores(), None).await
}

impl Jwt {
    fn fixture(&self) -> Fixture {
        Fixture {
            server: self.server.clone(),
            clock: self.clock.clone(),
        }
    }

    async fn cc(&self) -> String {
        self.fixture()
            .token(
                "grant_type=client_credentials&scope=a",
                Some(("svc", "svc-secret")),
            )
            .await
            .expect("client credentials token")
            .access_token
    }

    /// A code-flow pair of `app` (subject alice): access JWT and opaque refresh token.
    async fn app_pair(&self) -> (String, String) {
        let f = self.fixture();
        let code = f.code("app", "a+b", false).await;
        let t = f
            .token(
                &format!("grant_type=authorization_code&code={code}&redirect_uri={REDIRECT}"),
                Some(("app", "app-secret")),
            )
            .await
            .expect("code redeems");
        (t.access_token, t.refresh_token.expect("refresh token"))
    }

    async fn ok(&self, token: &str) -> bool {
        self.fixture().access_ok(token).await
    }

    async fn revoke(&self, id: &str, secret: &str, token: &str) {
        revoke::handle(
            &self.server,
            RevokeRequest {
                body: format!("token={token}").as_bytes(),
                content_type: Some(FORM),
                authorization: Some(&basic(id, secret)),
                transport: SECURE,
                ..Default::default()
            },
        )
        .await
        .expect("revocation answers 200");
    }

    async fn introspect(&self, token: &str) -> Value {
        let auth = basic("app", "app-secret");
        let r = introspect::handle(
            &self.server,
            IntrospectRequest {
                body: format!("token={token}").as_bytes(),
                content_type: Some(FORM),
                authorization: Some(&auth),
                transport: SECURE,
                ..Default::default()
            },
        )
        .await
        .expect("introspection answers");
        serde_json::to_value(r).expect("JSON")
    }
}

fn part(token: &str, i: usize) -> Value {
    let p = token.split('.').nth(i).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("JSON")
}

/// The claims of a valid token of `svc` at `now`, to forge variants of.
fn claims(now: i64) -> Value {
    json!({
        "iss": "https://as.example", "sub": "svc", "aud": "https://as.example",
        "exp": now + 600, "iat": now, "jti": "forged-1", "client_id": "svc", "scope": "a",
    })
}

fn sign(header: &Header, claims: &Value, pem: &str) -> String {
    let key = EncodingKey::from_ed_pem(pem.as_bytes()).expect("Ed25519 PEM");
    jsonwebtoken::encode(header, claims, &key).expect("signs")
}

fn at_header(kid: &str) -> Header {
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".into());
    h.kid = Some(kid.into());
    h
}

fn raw(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

#[rocket::async_test]
async fn a_client_credentials_jwt_round_trips_issue_to_validation() {
    let s = jwt_server().await;
    let t = s.cc().await;
    assert_eq!(t.split('.').count(), 3, "a JWS compact value");
    let info = twisted_oauth2::endpoint::resource::lookup(&s.server, &t, "a")
        .await
        .expect("valid");
    assert_eq!(&*info.client_id, "svc");
    assert_eq!(info.subject, None, "a client's own token has no user");
    assert_eq!(info.scope.to_string(), "a");
    // Other clients stay opaque.
    let code = s.fixture().code("web", "a", true).await;
    let web = s.fixture().redeem_web(&code).await.expect("web token");
    assert_eq!(
        web.access_token.split('.').count(),
        1,
        "web's token is opaque"
    );
    assert!(s.ok(&web.access_token).await);
}

#[rocket::async_test]
async fn rfc9068_section_2_every_claim_and_the_header() {
    let s = jwt_server().await;
    let t = s.cc().await;
    let h = part(&t, 0);
    assert_eq!(h["typ"], "at+jwt", "RFC 9068 §2.1");
    assert_eq!(h["alg"], "EdDSA", "the key's algorithm");
    assert!(h["kid"].as_str().is_some_and(|k| !k.is_empty()));
    let c = part(&t, 1);
    assert_eq!(c["iss"], "https://as.example");
    assert_eq!(
        c["sub"], "svc",
        "§2.2: the client for a client-credentials token"
    );
    assert_eq!(c["aud"], "https://as.example", "the default audience");
    assert_eq!(c["iat"], T0);
    assert_eq!(c["exp"], T0 + 3600);
    assert_eq!(c["client_id"], "svc");
    assert_eq!(c["scope"], "a");
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(c.get("gid").is_none());
    let other = s.cc().await;
    assert_ne!(part(&other, 1)["jti"], c["jti"], "a fresh jti per token");
    // A user's token names the user and its grant.
    let (access, _) = s.app_pair().await;
    let c = part(&access, 1);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["client_id"], "app");
    assert_eq!(c["scope"], "a b");
    assert!(c["gid"].as_str().is_some_and(|g| g.len() == 32));
    let info = twisted_oauth2::endpoint::resource::lookup(&s.server, &access, "")
        .await
        .expect("valid");
    assert_eq!(info.subject.as_deref(), Some("alice"));
}

#[rocket::async_test]
async fn algorithm_confusion_and_forged_tokens_are_refused() {
    let s = jwt_server().await;
    let good = s.cc().await;
    let kid = part(&good, 0)["kid"].as_str().unwrap().to_owned();
    let c = claims(T0);
    // The forged token with the right key, header and claims is accepted: the refusals
    // below are for what each changes.
    let control = sign(&at_header(&kid), &c, KEY_PEM);
    assert!(s.ok(&control).await, "the control token verifies");

    let none = raw(
        &json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
        &c,
        b"",
    );
    assert!(!s.ok(&none).await, "alg: none");

    // HS256 keyed with the public key's bytes (the classic confusion).
    let jwks: Value = serde_json::from_str(&s.server_jwks()).expect("JWKS");
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let public = URL_SAFE_NO_PAD.decode(&x).unwrap();
    for secret in [public.as_slice(), x.as_bytes(), s.server_jwks().as_bytes()] {
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(kid.clone());
        let t = jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(secret).unwrap()).unwrap();
        assert!(!s.ok(&t).await, "HS256 keyed with public material");
    }

    // A header carrying its own key, or a key URL: refused even though signed by our key.
    for (name, value) in [
        ("jwk", jwks["keys"][0].clone()),
        ("jku", json!("https://attacker.example/jwks")),
        ("x5u", json!("https://attacker.example/cert")),
        ("crit", json!(["exp"])),
    ] {
        let mut h = serde_json::to_value(at_header(&kid)).unwrap();
        h[name] = value;
        let signing = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(h.to_string()),
            URL_SAFE_NO_PAD.encode(c.to_string())
        );
        let key = EncodingKey::from_ed_pem(KEY_PEM.as_bytes()).unwrap();
        let sig = jsonwebtoken::crypto::sign(signing.as_bytes(), &key, Algorithm::EdDSA).unwrap();
        let t = format!("{signing}.{sig}");
        assert!(!s.ok(&t).await, "a header with `{name}`");
    }

    let mut wrong_typ = at_header(&kid);
    wrong_typ.typ = Some("JWT".into());
    assert!(!s.ok(&sign(&wrong_typ, &c, KEY_PEM)).await, "typ JWT");
    let mut no_typ = at_header(&kid);
    no_typ.typ = None;
    assert!(!s.ok(&sign(&no_typ, &c, KEY_PEM)).await, "no typ");

    assert!(
        !s.ok(&sign(&at_header("not-ours"), &c, OTHER_PEM)).await,
        "a kid we do not publish"
    );
    assert!(
        !s.ok(&sign(&at_header(&kid), &c, OTHER_PEM)).await,
        "our kid, another key"
    );

    let mut other_iss = c.clone();
    other_iss["iss"] = json!("https://other.example");
    assert!(
        !s.ok(&sign(&at_header(&kid), &other_iss, KEY_PEM)).await,
        "another issuer"
    );
    let mut other_aud = c.clone();
    other_aud["aud"] = json!("https://api.other.example");
    assert!(
        !s.ok(&sign(&at_header(&kid), &other_aud, KEY_PEM)).await,
        "another audience"
    );

    // Expiry with a 30 s leeway.
    let mut expired = c.clone();
    expired["exp"] = json!(T0 - 31);
    assert!(
        !s.ok(&sign(&at_header(&kid), &expired, KEY_PEM)).await,
        "expired beyond the leeway"
    );
    let mut within = c.clone();
    within["exp"] = json!(T0 - 10);
    within["jti"] = json!("forged-2");
    assert!(
        s.ok(&sign(&at_header(&kid), &within, KEY_PEM)).await,
        "within the leeway"
    );

    let mut tampered: Vec<&str> = control.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(
        json!({"iss": "https://as.example", "sub": "svc", "aud": "https://as.example",
               "exp": T0 + 600, "iat": T0, "jti": "forged-1", "client_id": "svc",
               "scope": "a b"})
        .to_string(),
    );
    tampered[1] = &payload;
    assert!(
        !s.ok(&tampered.join(".")).await,
        "a widened scope breaks the signature"
    );
}

#[rocket::async_test]
async fn a_revoked_jwt_is_refused_and_introspects_inactive() {
    let s = jwt_server().await;
    let t = s.cc().await;
    assert!(s.ok(&t).await);
    assert_eq!(s.introspect(&t).await["active"], true);
    // Another client's revocation leaves it alone (RFC 7009 §2.1).
    s.revoke("other", "other-secret", &t).await;
    assert!(s.ok(&t).await);
    s.revoke("svc", "svc-secret", &t).await;
    assert!(!s.ok(&t).await, "refused once revoked");
    assert_eq!(s.introspect(&t).await, json!({"active": false}));
    let jti = part(&t, 1)["jti"].as_str().unwrap().to_owned();
    let denylist = s.stores.get::<dyn RevokedJtiStore>().expect("the jti slot");
    assert!(
        denylist.is_jti_revoked(&jti, T0).await.unwrap(),
        "kept in the store until exp"
    );
    // A fresh server on the same store reads the denylist at start.
    let again = server_on(jwt_config(), s.stores.clone(), None).await;
    assert!(!again.ok(&t).await, "refused by an instance started later");
}

#[rocket::async_test]
async fn introspection_of_a_jwt_answers_as_for_an_opaque_token() {
    let s = jwt_server().await;
    let (access, _) = s.app_pair().await;
    let v = s.introspect(&access).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], "app");
    assert_eq!(v["sub"], "alice");
    assert_eq!(v["scope"], "a b");
    assert_eq!(v["exp"], T0 + 3600);
    assert_eq!(v["iat"], T0);
    assert_eq!(v["iss"], "https://as.example");
    s.clock.advance(3600 + 29);
    assert_eq!(
        s.introspect(&access).await["active"],
        true,
        "within the 30 s leeway"
    );
    s.clock.advance(1);
    assert_eq!(s.introspect(&access).await, json!({"active": false}));
}

#[rocket::async_test]
async fn refresh_of_a_jwt_grant_and_reuse_revokes_its_jwts() {
    let s = jwt_server().await;
    let (first, refresh) = s.app_pair().await;
    let f = s.fixture();
    let next = f
        .token(
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
            Some(("app", "app-secret")),
        )
        .await
        .expect("refreshes");
    assert_eq!(next.access_token.split('.').count(), 3, "a new JWT");
    assert_ne!(part(&next.access_token, 1)["jti"], part(&first, 1)["jti"]);
    assert_eq!(
        part(&next.access_token, 1)["gid"],
        part(&first, 1)["gid"],
        "same family"
    );
    assert!(s.ok(&first).await && s.ok(&next.access_token).await);
    // The rotated-out refresh token again: reuse, the family is revoked (RFC 9700 §4.14.2).
    let reuse = f
        .token(
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
            Some(("app", "app-secret")),
        )
        .await;
    assert!(reuse.is_err());
    assert!(!s.ok(&first).await, "the family's first JWT");
    assert!(!s.ok(&next.access_token).await, "the family's later JWT");
}

#[rocket::async_test]
async fn a_replayed_code_revokes_the_jwt_issued_from_it() {
    let s = jwt_server().await;
    let f = s.fixture();
    let code = f.code("app", "a", false).await;
    let body = format!("grant_type=authorization_code&code={code}&redirect_uri={REDIRECT}");
    let t = f.token(&body, Some(("app", "app-secret"))).await.unwrap();
    assert!(s.ok(&t.access_token).await);
    assert!(f.token(&body, Some(("app", "app-secret"))).await.is_err());
    assert!(!s.ok(&t.access_token).await, "RFC 6749 §4.1.2");
}

/// Counts writes to the token stores around a memory backend.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    writes: AtomicU64,
}

#[async_trait]
impl AccessTokenStore for Counting {
    async fn put_access(&self, t: &TokenDigest, r: &TokenRecord) -> Result<(), StorageError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.put_access(t, r).await
    }
    async fn access(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        self.inner.access(t).await
    }
    async fn revoke_access(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.revoke_access(t).await
    }
    async fn revoke_access_grant(&self, g: GrantId, until: i64) -> Result<u64, StorageError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.revoke_access_grant(g, until).await
    }
    async fn revoke_access_client(&self, c: &str, until: i64) -> Result<u64, StorageError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.revoke_access_client(c, until).await
    }
    async fn access_grant_tombstone(&self, g: GrantId) -> Result<Option<i64>, StorageError> {
        self.inner.access_grant_tombstone(g).await
    }
}

#[async_trait]
impl RevokedJtiStore for Counting {
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StorageError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.revoke_jti(jti, exp).await
    }
    async fn is_jti_revoked(&self, jti: &str, now: i64) -> Result<bool, StorageError> {
        self.inner.is_jti_revoked(jti, now).await
    }
    async fn revoked_jtis(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        self.inner.revoked_jtis(now, limit).await
    }
    async fn purge_revoked_jtis(&self, now: i64) -> Result<u64, StorageError> {
        self.inner.purge_revoked_jtis(now).await
    }
}

#[rocket::async_test]
async fn client_credentials_jwts_write_nothing_to_the_store() {
    let counting = Arc::new(Counting::default());
    let memory = Arc::new(MemoryStore::new());
    let stores = Stores::builder()
        .backend(memory)
        .access(counting.clone())
        .slot::<dyn RevokedJtiStore>(counting.clone())
        .build()
        .expect("stores");
    let s = server_on(jwt_config(), stores, None).await;
    for _ in 0..20 {
        let t = s.cc().await;
        assert!(s.ok(&t).await);
    }
    assert_eq!(counting.writes.load(Ordering::SeqCst), 0, "no store write");
    // Revocation is what writes (the denylist entry).
    let t = s.cc().await;
    s.revoke("svc", "svc-secret", &t).await;
    assert!(counting.writes.load(Ordering::SeqCst) >= 1);
}

#[rocket::async_test]
async fn stateless_jwts_need_no_denylist_and_outlive_revocation_until_exp() {
    let mut cfg = jwt_config();
    cfg.jwt_access_tokens.stateless = true;
    let stores = Stores::builder()
        .backend(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let s = server_on(cfg, stores, None).await;
    let t = s.cc().await;
    s.revoke("svc", "svc-secret", &t).await;
    assert!(s.ok(&t).await, "stateless: valid until exp");
    s.clock.advance(3600 + 31);
    assert!(!s.ok(&t).await, "and not after (with the leeway)");
}

/// An in-process revocation channel shared by several servers.
#[derive(Default)]
struct MemChannel {
    sinks: Mutex<Vec<RevocationSink>>,
}

#[async_trait]
impl RevocationChannel for MemChannel {
    fn describe(&self) -> &'static str {
        "an in-process test channel"
    }
    fn start(&self, sink: RevocationSink) -> Result<(), StorageError> {
        sink.subscribed();
        self.sinks.lock().unwrap().push(sink);
        Ok(())
    }
    async fn publish(&self, r: Revocation) -> Result<(), StorageError> {
        let sinks = self.sinks.lock().unwrap().clone();
        for s in sinks {
            s.deliver(r);
        }
        Ok(())
    }
}

#[rocket::async_test]
async fn a_revocation_on_instance_a_is_seen_by_instance_b() {
    let stores = memory_stores();
    let channel = Arc::new(MemChannel::default());
    let a = server_on(jwt_config(), stores.clone(), Some(channel.clone())).await;
    let b = server_on(jwt_config(), stores.clone(), Some(channel.clone())).await;
    // Each accepts the other's tokens (one key in the shared store).
    let ta = a.cc().await;
    let tb = b.cc().await;
    assert!(b.ok(&ta).await && a.ok(&tb).await);
    // B has verified ta (it is in B's verified cache); A revokes it.
    a.revoke("svc", "svc-secret", &ta).await;
    assert!(!b.ok(&ta).await, "B refuses what A revoked");
    assert!(b.ok(&tb).await);
    // A grant revoked on A (refresh-token reuse) reaches B's verified JWTs of that grant.
    let (access, refresh) = a.app_pair().await;
    assert!(b.ok(&access).await);
    let fa = a.fixture();
    let body = format!("grant_type=refresh_token&refresh_token={refresh}");
    fa.token(&body, Some(("app", "app-secret")))
        .await
        .expect("refreshes");
    assert!(
        fa.token(&body, Some(("app", "app-secret"))).await.is_err(),
        "reuse"
    );
    assert!(!b.ok(&access).await, "B refuses the revoked family's JWT");
}

impl Jwt {
    /// The published JWKS document.
    fn server_jwks(&self) -> String {
        twisted_oauth2::endpoint::jwks::key_ring(&self.server)
            .expect("a key ring")
            .jwks_json()
            .to_string()
    }
}
