//! The extension seams, used from outside the crate with its public API only and exercised
//! over real HTTP (a Rocket server on a loopback port, `reqwest` as the client):
//! a grant of the application answering its own RFC error codes with headers and reading
//! the request's headers, and giving back what it took when issuance fails; a
//! self-contained access-token format chosen per client (issued with a key from the keys
//! slot and a `jti`, seen by an after-issue hook, validated at a protected route with typed
//! rejection reasons in the audit events, introspected, revoked with its revocations in the
//! store); a token validator of the application's own behind `#[oauth]`, beside our
//! authorization server and without one (resource-server-only mode); stores grown
//! through the builder; an endpoint mounted beside the built-ins with a member added to the
//! RFC 8414 document; a client created at run time through the writable client store; a
//! form endpoint built on the public toolkit (`twisted_oauth2::rocket::toolkit`)
//! authenticating clients as the token endpoint does, keeping extension state beside the
//! server, with a hook on every token response.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use oauth2::reqwest;
use rocket::http::Method;
use rocket::route::{Handler, Outcome, Route};
use rocket::{get, routes, Data, Request};
use sha2::{Digest, Sha256};
use twisted_oauth2::audit::{AuditEvent, AuditSink};
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::context::GrantContext;
use twisted_oauth2::endpoint::resource::BearerRequest;
use twisted_oauth2::error::{Challenge, StorageError};
use twisted_oauth2::format::{
    AccessTokenFormat, FormatContext, FormatKeys, IssuedToken, Rejection, ValidToken, Validation,
    ValidationContext,
};
use twisted_oauth2::grant::{
    AfterIssue, ClientAuthentication, Grant, GrantRequest, Issue, IssuedAccess, ReleaseOnFailure,
};
use twisted_oauth2::rocket::{OAuth2, OAuth2State};
use twisted_oauth2::storage::{GrantId, Stores, TokenRecord};
use twisted_oauth2::token::TokenResponse;
use twisted_oauth2::validation::{ProtectedResource, RequestPolicy, TokenValidator};
use twisted_oauth2::{oauth, AuthorizationServer, ErrorCode, OAuthError, Scope, TokenInfo};

const POLL: &str = "urn:example:params:oauth:grant-type:poll";

/// A device-style grant: `authorization_pending` until the client proves it holds the
/// nonce it was given (a DPoP-style round trip through a response header).
struct PollGrant;

#[async_trait]
impl Grant for PollGrant {
    fn grant_type(&self) -> &str {
        POLL
    }

    fn client_authentication(&self) -> ClientAuthentication {
        ClientAuthentication::ConfidentialOnly
    }

    async fn handle(
        &self,
        ctx: &GrantContext<'_>,
        req: &GrantRequest<'_>,
    ) -> Result<Issue, OAuthError> {
        let client = req.client()?;
        match req.params.get("device_code") {
            Some("pending") => return Err(OAuthError::new(ErrorCode::AUTHORIZATION_PENDING)),
            Some("ready") => {}
            _ => return Err(OAuthError::invalid_grant("unknown device_code")),
        }
        if req.request.header("X-Poll-Nonce") != Some("n-1") {
            return Err(OAuthError::with_description(
                ErrorCode::USE_DPOP_NONCE,
                "send the nonce you were given",
            )
            .with_header("X-Poll-Nonce", "n-1"));
        }
        let scope = ctx.resolve_scope(req.params.get("scope"), client)?;
        // The device code is used up now; it is given back if issuance fails.
        Ok(Issue::new(scope)
            .subject("device-user")
            .response_member("device_note", serde_json::json!("polled"))
            .release_on_failure(Arc::new(ReleaseDevice)))
    }
}

type Mac256 = Hmac<Sha256>;

/// The signed format's MAC key, handed to it through the server's keys slot.
struct MacKey(&'static [u8]);

const KEY: MacKey = MacKey(b"test key: never a real secret");

/// Self-contained access tokens: `st.<claims as JSON>.<HMAC-SHA256>`, base64url. The claims
/// are the record plus `typ`, `iss` and `jti`; nothing is stored at issuance. The key comes
/// from the keys slot, the issuer from the context. Revocations live in the access-token
/// store as grant tombstones (`revoke_access_grant`, read back with
/// `access_grant_tombstone`), so every instance sharing the store sees them: revoking one
/// token tombstones its grant (each `client_credentials` token is a grant of its own).
struct SignedTokens;

fn mac(key: &MacKey, payload: &str) -> Mac256 {
    let mut mac = Mac256::new_from_slice(key.0).expect("any key length");
    mac.update(payload.as_bytes());
    mac
}

/// Signs `claims` as the format does (the test forges tokens with it).
fn sign(claims: &serde_json::Value) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let sig = URL_SAFE_NO_PAD.encode(mac(&KEY, &payload).finalize().into_bytes());
    format!("st.{payload}.{sig}")
}

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

impl SignedTokens {
    fn key<'a>(ctx: &FormatContext<'a>) -> Result<&'a MacKey, StorageError> {
        ctx.keys()
            .and_then(|k| k.get::<MacKey>())
            .ok_or_else(|| StorageError::other(std::io::Error::other("no MAC key in the slot")))
    }

    async fn revoked(ctx: &FormatContext<'_>, grant: GrantId) -> Result<bool, StorageError> {
        let until = ctx.store().access_grant_tombstone(grant).await?;
        Ok(until.is_some_and(|t| t > ctx.now()))
    }
}

#[async_trait]
impl AccessTokenFormat for SignedTokens {
    async fn issue(
        &self,
        ctx: &FormatContext<'_>,
        record: &TokenRecord,
    ) -> Result<IssuedToken, StorageError> {
        let key = Self::key(ctx)?;
        assert!(ctx.client().is_some(), "the issuance path names the client");
        if Self::revoked(ctx, record.grant_id).await? {
            return Err(StorageError::GrantRevoked);
        }
        let jti = ctx.random_value()?;
        let mut claims = serde_json::to_value(record).map_err(StorageError::other)?;
        claims["typ"] = serde_json::json!("at");
        claims["iss"] = serde_json::json!(ctx.issuer());
        claims["jti"] = serde_json::json!(jti);
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(StorageError::other)?);
        let sig = URL_SAFE_NO_PAD.encode(mac(key, &payload).finalize().into_bytes());
        Ok(IssuedToken::for_record(format!("st.{payload}.{sig}"), record).with_jti(jti))
    }

    async fn validate(
        &self,
        ctx: &FormatContext<'_>,
        check: &ValidationContext<'_>,
        token: &str,
    ) -> Result<Validation, StorageError> {
        let Some(rest) = token.strip_prefix("st.") else {
            return Ok(Validation::Rejected(Rejection::Unknown));
        };
        let key = Self::key(ctx)?;
        let Some((payload, sig)) = rest.split_once('.') else {
            return Ok(Validation::Rejected(Rejection::Malformed));
        };
        let verified = URL_SAFE_NO_PAD
            .decode(sig)
            .ok()
            .is_some_and(|sig| mac(key, payload).verify_slice(&sig).is_ok());
        if !verified {
            return Ok(Validation::Rejected(Rejection::BadSignature));
        }
        let claims: Option<serde_json::Map<String, serde_json::Value>> = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|j| serde_json::from_slice(&j).ok());
        let Some(claims) = claims else {
            return Ok(Validation::Rejected(Rejection::Malformed));
        };
        if claims.get("typ") != Some(&serde_json::json!("at")) {
            return Ok(Validation::Rejected(Rejection::WrongType));
        }
        if claims.get("iss").and_then(|v| v.as_str()) != Some(ctx.issuer()) {
            return Ok(Validation::Rejected(Rejection::WrongAudience));
        }
        let Ok(record) =
            serde_json::from_value::<TokenRecord>(serde_json::Value::Object(claims.clone()))
        else {
            return Ok(Validation::Rejected(Rejection::Malformed));
        };
        if check.judge && record.is_expired(check.now - check.leeway) {
            return Ok(Validation::Rejected(Rejection::Expired));
        }
        if Self::revoked(ctx, record.grant_id).await? {
            return Ok(Validation::Rejected(Rejection::Revoked));
        }
        let jti = claims
            .get("jti")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        Ok(Validation::Valid(
            ValidToken::new(record).with_jti(jti).with_claims(claims),
        ))
    }

    async fn revoke(
        &self,
        ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError> {
        let mut check = ValidationContext::new(ctx.now());
        check.judge = false;
        let Some(t) = self.validate(ctx, &check, token).await?.valid() else {
            return Ok(None);
        };
        ctx.store()
            .revoke_access_grant(t.record.grant_id, t.record.expires_at)
            .await?;
        Ok(Some(t.record))
    }
}

/// A format whose issuance fails: with an outage (`broken`) or a revoked grant (`revoked`).
struct FailingTokens(bool);

#[async_trait]
impl AccessTokenFormat for FailingTokens {
    async fn issue(
        &self,
        _ctx: &FormatContext<'_>,
        _record: &TokenRecord,
    ) -> Result<IssuedToken, StorageError> {
        Err(if self.0 {
            StorageError::GrantRevoked
        } else {
            StorageError::other(std::io::Error::other("the signing service is down"))
        })
    }

    async fn validate(
        &self,
        _ctx: &FormatContext<'_>,
        _check: &ValidationContext<'_>,
        _token: &str,
    ) -> Result<Validation, StorageError> {
        Ok(Validation::Rejected(Rejection::Unknown))
    }

    async fn revoke(
        &self,
        _ctx: &FormatContext<'_>,
        _token: &str,
    ) -> Result<Option<TokenRecord>, StorageError> {
        Ok(None)
    }
}

/// Counts what the poll grant gave back ([`ReleaseOnFailure`]).
static RELEASED: AtomicUsize = AtomicUsize::new(0);

struct ReleaseDevice;

#[async_trait]
impl ReleaseOnFailure for ReleaseDevice {
    async fn release(&self, _ctx: &GrantContext<'_>) -> Result<(), StorageError> {
        RELEASED.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Adds `at_hash` (OpenID Connect Core §3.1.3.6: the left half of the SHA-256 of the value,
/// base64url) and the format's `jti` to every token response: the issued value reaches it.
struct AtHash;

#[async_trait]
impl AfterIssue for AtHash {
    async fn after_issue(
        &self,
        _ctx: &GrantContext<'_>,
        issued: &IssuedAccess<'_>,
        response: &mut TokenResponse,
    ) -> Result<(), OAuthError> {
        let digest = Sha256::digest(issued.token.value.as_bytes());
        let at_hash = URL_SAFE_NO_PAD.encode(&digest[..16]);
        response
            .members
            .insert("at_hash".into(), serde_json::json!(at_hash));
        if let Some(jti) = &issued.token.jti {
            response
                .members
                .insert("test_jti".into(), serde_json::json!(jti));
        }
        Ok(())
    }
}

/// Audit events, kept for the test to read.
#[derive(Default)]
struct Events(Mutex<Vec<AuditEvent>>);

impl AuditSink for Events {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Events {
    fn rejections(&self) -> Vec<Rejection> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                AuditEvent::TokenRejected { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }
}

/// `GET <base>/hello`: an extension endpoint reading the server from managed state.
#[derive(Clone)]
struct Hello;

#[rocket::async_trait]
impl Handler for Hello {
    async fn handle<'r>(&self, req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r> {
        let issuer = req
            .rocket()
            .state::<OAuth2State>()
            .and_then(|s| s.server().map(|s| s.issuer().to_owned()))
            .unwrap_or_default();
        Outcome::from(req, format!("hello from {issuer}"))
    }
}

/// `POST <base>/ticket`: a form endpoint of the toolkit. The client authenticates as at
/// the token endpoint for the poll grant; the answer counts its tickets in extension state.
struct Ticket;

/// The tickets handed out, kept beside the server.
#[derive(Default)]
struct Tickets(std::sync::atomic::AtomicU64);

#[rocket::async_trait]
impl twisted_oauth2::rocket::toolkit::FormEndpoint for Ticket {
    fn cors(&self) -> bool {
        true
    }

    async fn handle(
        &self,
        server: &twisted_oauth2::AuthorizationServer,
        form: twisted_oauth2::endpoint::FormRequest<'_>,
    ) -> Result<String, OAuthError> {
        let params = form.params(server)?;
        let auth = twisted_oauth2::endpoint::client_auth::authenticate_for_grant(
            server,
            &params,
            form.authorization,
            form.request.client_ip,
            POLL,
            ClientAuthentication::ConfidentialOnly,
        )
        .await?
        .expect("authenticated under ConfidentialOnly");
        let n = server
            .extension_state(|_| Tickets::default())
            .0
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        Ok(serde_json::json!({ "client_id": auth.client.id(), "ticket": n }).to_string())
    }
}

/// Counts the token responses, by grant type.
#[derive(Default)]
struct IssuedLog(Mutex<Vec<String>>);

#[async_trait]
impl twisted_oauth2::endpoint::token::TokenIssued for IssuedLog {
    async fn issued(
        &self,
        _server: &twisted_oauth2::AuthorizationServer,
        client: &twisted_oauth2::client::Client,
        grant_type: &str,
    ) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{}:{grant_type}", client.id()));
    }
}

#[oauth(scope = "read")]
#[get("/protected")]
fn protected() -> &'static str {
    "ok"
}

#[oauth(scope = "read")]
#[get("/whoami")]
fn whoami(info: TokenInfo) -> String {
    format!("{} {}", info.client_id, info.jti.as_deref().unwrap_or("-"))
}

fn client(id: &str, format: Option<&str>) -> ClientConfig {
    ClientConfig {
        id: id.into(),
        secret: Some(format!("{id}-secret")),
        grant_types: vec!["client_credentials".into(), POLL.into()],
        scopes: Some(vec!["read".into()]),
        access_token_format: format.map(str::to_owned),
        ..Default::default()
    }
}

fn config(port: u16) -> ServerConfig {
    // `svc` gets signed tokens, `plain` the server-wide default (opaque).
    let svc = ClientConfig {
        secret: Some("svc-secret".into()),
        ..client("svc", Some("signed"))
    };
    let plain = client("plain", None);
    let broken = client("broken", Some("broken"));
    let revoked = client("revoked", Some("revoked"));
    let rs = ClientConfig {
        id: "rs".into(),
        secret: Some("rs-secret".into()),
        introspect: true,
        ..Default::default()
    };
    ServerConfig {
        issuer: format!("http://127.0.0.1:{port}"),
        allow_insecure_request_debug: true,
        clients: vec![svc, plain, broken, revoked, rs],
        ..Default::default()
    }
}

struct Served {
    base: String,
    issued: Arc<IssuedLog>,
    server: Arc<twisted_oauth2::AuthorizationServer>,
    events: Arc<Events>,
    _shutdown: common::Demo,
}

async fn serve() -> Served {
    serve_with(|f| f).await
}

async fn serve_with(more: impl FnOnce(OAuth2) -> OAuth2) -> Served {
    let port = common::free_port();
    let figment = common::demo_figment(port).merge(("oauth2", config(port)));
    let events = Arc::new(Events::default());
    let issued = Arc::new(IssuedLog::default());
    let fairing = OAuth2::fairing()
        .grant(Arc::new(PollGrant))
        .form_endpoint("/ticket", Ticket)
        .on_token_issued(issued.clone())
        .token_format("signed", Arc::new(SignedTokens))
        .token_format("broken", Arc::new(FailingTokens(false)))
        .token_format("revoked", Arc::new(FailingTokens(true)))
        .format_keys(FormatKeys::new(KEY))
        .after_issue(Arc::new(AtHash))
        .audit(events.clone());
    let rocket = rocket::custom(figment)
        .attach(
            more(fairing)
                .endpoint(Route::new(Method::Get, "/hello", Hello))
                .metadata_member(
                    "hello_endpoint",
                    serde_json::json!(format!("http://127.0.0.1:{port}/oauth2/hello")),
                ),
        )
        .mount("/", routes![protected, whoami]);
    let ignited = rocket.ignite().await.expect("ignites");
    let server = ignited
        .state::<OAuth2State>()
        .expect("fairing state")
        .server()
        .expect("an authorization server")
        .clone();
    let served = common::launch(ignited, port).await;
    Served {
        base: served.base.clone(),
        issued,
        _shutdown: served,
        server,
        events,
    }
}

async fn json(r: reqwest::Response) -> serde_json::Value {
    serde_json::from_str(&r.text().await.expect("body")).expect("JSON body")
}

#[rocket::async_test]
async fn an_application_grant_answers_its_own_error_codes_and_headers_then_issues() {
    let s = serve().await;
    let http = common::http_client();
    let token = |device: &'static str, nonce: Option<&'static str>| {
        let mut r = http
            .post(format!("{}/oauth2/token", s.base))
            .basic_auth("svc", Some("svc-secret"))
            .form(&[
                ("grant_type", POLL),
                ("device_code", device),
                ("scope", "read"),
            ]);
        if let Some(n) = nonce {
            r = r.header("X-Poll-Nonce", n);
        }
        r.send()
    };
    let r = token("pending", None).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(json(r).await["error"], "authorization_pending");
    let r = token("ready", None).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["x-poll-nonce"], "n-1");
    assert_eq!(json(r).await["error"], "use_dpop_nonce");
    let r = token("ready", Some("n-1")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v = json(r).await;
    assert_eq!(v["device_note"], "polled");
    assert_eq!(v["scope"], "read");
    // A public client may not use a confidential-only grant; metadata lists the grant.
    let doc = json(
        http.get(format!("{}/.well-known/oauth-authorization-server", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let grants: Vec<String> = serde_json::from_value(doc["grant_types_supported"].clone()).unwrap();
    assert!(grants.contains(&POLL.to_owned()), "{grants:?}");
}

async fn token_for(s: &Served, client: &str, secret: &str) -> reqwest::Response {
    common::http_client()
        .post(format!("{}/oauth2/token", s.base))
        .basic_auth(client, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap()
}

async fn status_at(s: &Served, path: &str, token: &str) -> u16 {
    common::http_client()
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[rocket::async_test]
async fn a_self_contained_token_format_is_issued_validated_introspected_and_revoked() {
    let s = serve().await;
    let http = common::http_client();
    let v = json(token_for(&s, "svc", "svc-secret").await).await;
    let at = v["access_token"].as_str().unwrap().to_owned();
    assert!(
        at.starts_with("st."),
        "the client's format made the value: {at}"
    );
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600, "the issued token's own lifetime");
    // The format signed with the key of the keys slot and named the token; the issuer came
    // from the context.
    let claims = claims_of(&at);
    assert_eq!(claims["iss"], s.base);
    assert_eq!(claims["typ"], "at");
    let jti = claims["jti"].as_str().unwrap().to_owned();
    // The after-issue hook saw the issued value and its jti.
    let digest = Sha256::digest(at.as_bytes());
    assert_eq!(v["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));
    assert_eq!(v["test_jti"], jti);
    assert_eq!(status_at(&s, "/protected", &at).await, 200);
    // The route's TokenInfo carries the jti the format read back.
    let who = http
        .get(format!("{}/whoami", s.base))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(who.text().await.unwrap(), format!("svc {jti}"));
    let introspect = |t: String| {
        http.post(format!("{}/oauth2/introspect", s.base))
            .basic_auth("rs", Some("rs-secret"))
            .form(&[("token", t)])
            .send()
    };
    let i = json(introspect(at.clone()).await.unwrap()).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], "svc");
    // A forged value (a changed record under the old signature) is not accepted.
    let forged = {
        let parts: Vec<&str> = at.split('.').collect();
        let mut rec = claims_of(&at);
        rec["scope"] = serde_json::json!("read admin");
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&rec).unwrap());
        format!("st.{payload}.{}", parts[2])
    };
    assert_eq!(status_at(&s, "/protected", &forged).await, 401);
    let r = http
        .post(format!("{}/oauth2/revoke", s.base))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The revocation is a grant tombstone in the store, read back by the format.
    let grant =
        GrantId::from_u128(u128::from_str_radix(claims["grant_id"].as_str().unwrap(), 16).unwrap());
    let until = s
        .server
        .stores()
        .access
        .access_grant_tombstone(grant)
        .await
        .unwrap();
    assert!(until.is_some_and(|t| t > s.server.now()), "{until:?}");
    assert_eq!(status_at(&s, "/protected", &at).await, 401);
    assert_eq!(json(introspect(at).await.unwrap()).await["active"], false);
    assert_eq!(
        s.events.rejections(),
        vec![
            Rejection::BadSignature,
            Rejection::Revoked,
            Rejection::Revoked
        ],
        "each refusal reached the audit events with its reason"
    );
}

#[rocket::async_test]
async fn the_format_is_chosen_per_client_and_both_validate() {
    let s = serve().await;
    let signed = json(token_for(&s, "svc", "svc-secret").await).await;
    let plain = json(token_for(&s, "plain", "plain-secret").await).await;
    let (signed, plain) = (
        signed["access_token"].as_str().unwrap().to_owned(),
        plain["access_token"].as_str().unwrap().to_owned(),
    );
    assert!(signed.starts_with("st."));
    assert!(
        !plain.starts_with("st."),
        "the server-wide default is opaque"
    );
    assert!(s
        .server
        .stores()
        .access
        .access(&twisted_oauth2::token::TokenDigest::of(&plain))
        .await
        .unwrap()
        .is_some());
    assert_eq!(status_at(&s, "/protected", &signed).await, 200);
    assert_eq!(status_at(&s, "/protected", &plain).await, 200);
    // `jwt` is built in when the crate's `jwt` feature is on (the demo turns it on here).
    let names: Vec<&str> = s
        .server
        .formats()
        .names()
        .into_iter()
        .filter(|n| *n != "jwt")
        .collect();
    assert_eq!(names, vec!["opaque", "signed", "broken", "revoked"]);
}

#[rocket::async_test]
async fn rejection_reasons_reach_the_audit_events_and_the_client_gets_invalid_token() {
    let s = serve().await;
    let v = json(token_for(&s, "svc", "svc-secret").await).await;
    let good = claims_of(v["access_token"].as_str().unwrap());
    let with = |k: &str, val: serde_json::Value| {
        let mut c = good.clone();
        c[k] = val;
        sign(&c)
    };
    let now = s.server.now();
    let cases = [
        ("st.garbage", Rejection::Malformed),
        ("never-issued", Rejection::Unknown),
        (&*with("typ", serde_json::json!("id")), Rejection::WrongType),
        (
            &*with("expires_at", serde_json::json!(now - 10)),
            Rejection::Expired,
        ),
        (
            &*with("iss", serde_json::json!("https://elsewhere.example")),
            Rejection::WrongAudience,
        ),
        (
            &*with("audience", serde_json::json!(["https://other.example/api"])),
            Rejection::WrongAudience,
        ),
        (
            &*with("client_id", serde_json::json!("deleted-client")),
            Rejection::UnknownClient,
        ),
    ];
    for (token, _) in &cases {
        let r = common::http_client()
            .get(format!("{}/protected", s.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{token}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        let body = r.text().await.unwrap();
        for (_, reason) in &cases {
            assert!(
                !body.contains(reason.as_str()),
                "the reason never reaches the client: {body}"
            );
        }
    }
    let want: Vec<Rejection> = cases.iter().map(|(_, r)| *r).collect();
    assert_eq!(s.events.rejections(), want);
}

#[rocket::async_test]
async fn a_grant_gives_back_what_it_took_when_issuance_fails_but_not_when_revoked() {
    let s = serve().await;
    let poll = |client: &'static str| {
        common::http_client()
            .post(format!("{}/oauth2/token", s.base))
            .basic_auth(client, Some(format!("{client}-secret")))
            .header("X-Poll-Nonce", "n-1")
            .form(&[
                ("grant_type", POLL),
                ("device_code", "ready"),
                ("scope", "read"),
            ])
            .send()
    };
    let before = RELEASED.load(Ordering::SeqCst);
    let r = poll("broken").await.unwrap();
    assert_eq!(r.status().as_u16(), 500, "an outage of the format");
    assert_eq!(json(r).await["error"], "server_error");
    assert_eq!(RELEASED.load(Ordering::SeqCst), before + 1, "released once");
    let r = poll("revoked").await.unwrap();
    assert_eq!(json(r).await["error"], "invalid_grant");
    assert_eq!(
        RELEASED.load(Ordering::SeqCst),
        before + 1,
        "a revoked grant keeps it used"
    );
}

#[test]
fn an_unregistered_access_token_format_is_refused_at_launch() {
    let mut cfg = config(1);
    cfg.clients.push(client("typo", Some("jtw")));
    let e = AuthorizationServer::builder(cfg)
        .grant(Arc::new(PollGrant))
        .token_format("signed", Arc::new(SignedTokens))
        .token_format("broken", Arc::new(FailingTokens(false)))
        .token_format("revoked", Arc::new(FailingTokens(true)))
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("typo") && e.contains("`jtw`") && e.contains("signed"),
        "{e}"
    );
    let cfg = ServerConfig {
        access_token_format: "jwe".into(),
        ..config(1)
    };
    let e = AuthorizationServer::builder(cfg)
        .token_format("signed", Arc::new(SignedTokens))
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("access_token_format") && e.contains("`jwe`"),
        "{e}"
    );
}

/// A store trait of the application's, kept in an extension slot.
trait Denylist: Send + Sync {
    fn denied(&self, jti: &str) -> bool;
}

struct NoneDenied;

impl Denylist for NoneDenied {
    fn denied(&self, _jti: &str) -> bool {
        false
    }
}

#[test]
fn stores_grow_through_the_builder_and_a_missing_required_slot_is_named_at_launch() {
    let plain = ServerConfig {
        issuer: "http://127.0.0.1:1".into(),
        allow_insecure_request_debug: true,
        ..Default::default()
    };
    let e = AuthorizationServer::builder(plain.clone())
        .store_slots(|b| b.require::<dyn Denylist>("denylist"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("storage") && e.contains("`denylist`"), "{e}");
    let server = AuthorizationServer::builder(plain.clone())
        .store_slots(|b| {
            b.slot::<dyn Denylist>(Arc::new(NoneDenied))
                .require::<dyn Denylist>("denylist")
        })
        .build()
        .unwrap();
    let list = server
        .stores()
        .get::<dyn Denylist>()
        .expect("the slot is filled");
    assert!(!list.denied("x"));
    // A builder missing a built-in slot names it too.
    let e = AuthorizationServer::builder(plain)
        .stores_builder(Stores::builder())
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("`clients`"), "{e}");
}

/// Trusts `letmein` as a token of `remote-client` with scope `read`: a validator of the
/// application's own (a resource server trusting another authorization server plugs in
/// the same way).
struct RemoteValidator(RequestPolicy);

#[async_trait]
impl TokenValidator for RemoteValidator {
    async fn authenticate(&self, req: &BearerRequest<'_>) -> Result<TokenInfo, OAuthError> {
        let invalid = || {
            OAuthError::with_description(ErrorCode::InvalidToken, "the access token is invalid")
                .with_challenge(Challenge::Bearer { scope: None })
        };
        let token = req
            .authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(invalid)?;
        if token != "letmein" {
            return Err(invalid());
        }
        assert_eq!(
            req.request.path, "/whoami",
            "the validator sees the request"
        );
        let record = TokenRecord::new(
            "remote-client",
            Scope::parse("read").unwrap(),
            GrantId::random(),
            0,
            i64::MAX / 2,
        );
        Ok(TokenInfo::from_valid(
            ValidToken::new(record).with_jti("remote-1"),
        ))
    }

    fn request_policy(&self) -> &RequestPolicy {
        &self.0
    }
}

#[rocket::async_test]
async fn protected_routes_validate_through_the_token_validator_in_the_state() {
    let s = serve_with(|f| f.token_validator(Arc::new(RemoteValidator(RequestPolicy::default()))))
        .await;
    let http = common::http_client();
    let r = http
        .get(format!("{}/whoami", s.base))
        .bearer_auth("letmein")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "remote-client remote-1");
    // The server's own tokens mean nothing to this validator.
    let own = json(token_for(&s, "plain", "plain-secret").await).await;
    assert_eq!(
        status_at(&s, "/whoami", own["access_token"].as_str().unwrap()).await,
        401
    );
}

#[oauth(scope = "write")]
#[get("/write")]
fn write_only() -> &'static str {
    "written"
}

/// Trusts `letmein` as a token of `own-client` with scope `read` for the resource
/// `https://api.example/notes`, issued by an authorization server elsewhere.
struct OwnResource(RequestPolicy);

#[async_trait]
impl TokenValidator for OwnResource {
    async fn authenticate(&self, req: &BearerRequest<'_>) -> Result<TokenInfo, OAuthError> {
        let token = req.authorization.and_then(|h| h.strip_prefix("Bearer "));
        let Some(token) = token else {
            return Err(OAuthError::no_token(""));
        };
        if token != "letmein" {
            return Err(OAuthError::with_description(
                ErrorCode::InvalidToken,
                "the access token is invalid",
            )
            .with_challenge(Challenge::Bearer { scope: None }));
        }
        let record = TokenRecord::new(
            "own-client",
            Scope::parse("read").unwrap(),
            GrantId::random(),
            0,
            i64::MAX / 2,
        );
        Ok(TokenInfo::from_valid(
            ValidToken::new(record).with_jti("own-1"),
        ))
    }

    fn request_policy(&self) -> &RequestPolicy {
        &self.0
    }

    fn protected_resource(&self) -> Option<ProtectedResource> {
        Some(ProtectedResource::new(
            "https://api.example/notes",
            vec!["https://issuer.example".into()],
        ))
    }
}

#[rocket::async_test]
async fn a_validator_of_our_own_protects_oauth_routes_without_an_authorization_server() {
    let port = common::free_port();
    // Rocket's defaults only: no `oauth2` table, so no issuer, client or store anywhere.
    let figment = rocket::figment::Figment::from(rocket::Config::default())
        .merge(("port", port))
        .merge(("address", "127.0.0.1"))
        .merge(("log_level", "off"))
        .merge(("shutdown.grace", 0))
        .merge(("shutdown.mercy", 0))
        .merge(("shutdown.ctrlc", false));
    let validator = Arc::new(OwnResource(RequestPolicy::default()));
    let ignited = rocket::custom(figment)
        .attach(OAuth2::resource_server(validator))
        .mount("/", routes![protected, whoami, write_only])
        .ignite()
        .await
        .expect("ignites without an authorization server");
    let state = ignited.state::<OAuth2State>().expect("fairing state");
    assert!(state.server().is_none());
    assert_eq!(
        state.resource_metadata_url(),
        "https://api.example/.well-known/oauth-protected-resource/notes"
    );
    let served = common::launch(ignited, port).await;
    let http = common::http_client();
    let get = |path: &str, token: Option<&str>| {
        let mut r = http.get(format!("{}{path}", served.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = get("/whoami", Some("letmein")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "own-client own-1");

    let challenge = |r: &reqwest::Response| {
        r.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let r = get("/protected", None).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let c = challenge(&r);
    assert!(
        c.starts_with("Bearer ")
            && c.contains(r#"resource_metadata="https://api.example/.well-known/oauth-protected-resource/notes""#)
            && c.contains(r#"scope="read""#)
            && !c.contains("error="),
        "RFC 6750 §3.1: no error code without a token; RFC 9728 §5.1: {c}"
    );
    let r = get("/protected", Some("guess")).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(challenge(&r).contains(r#"error="invalid_token""#));
    let r = get("/write", Some("letmein")).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(challenge(&r).contains(r#"error="insufficient_scope""#));

    let doc = json(
        get("/.well-known/oauth-protected-resource/notes", None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(doc["resource"], "https://api.example/notes");
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!(["https://issuer.example"]),
        "RFC 9728 §2: the external authorization server, not one of ours"
    );
    assert_eq!(
        doc["scopes_supported"],
        serde_json::json!(["read", "write"])
    );
    // No authorization server: nothing under /oauth2, no RFC 8414 document.
    for path in ["/oauth2/token", "/.well-known/oauth-authorization-server"] {
        let r = http
            .post(format!("{}{path}", served.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
        assert_eq!(
            get(path, None).await.unwrap().status().as_u16(),
            404,
            "{path}"
        );
    }
}

#[rocket::async_test]
async fn a_mounted_endpoint_is_served_and_advertised_in_the_metadata() {
    let s = serve().await;
    let http = common::http_client();
    let r = http
        .get(format!("{}/oauth2/hello", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), format!("hello from {}", s.base));
    let doc = json(
        http.get(format!("{}/.well-known/oauth-authorization-server", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(doc["hello_endpoint"], format!("{}/oauth2/hello", s.base));
    assert_eq!(doc["issuer"], s.base, "computed members are kept");
}

#[rocket::async_test]
async fn a_client_created_through_the_writable_store_gets_tokens_until_deleted() {
    let s = serve().await;
    let http = common::http_client();
    let registry = s
        .server
        .client_registry()
        .expect("the memory store is writable");
    let client = twisted_oauth2::Client::builder("made-at-runtime")
        .secret("runtime-secret")
        .grant_type("client_credentials")
        .scope("read")
        .build()
        .unwrap();
    registry.create_client(&client).await.unwrap();
    let get_token = || {
        http.post(format!("{}/oauth2/token", s.base))
            .basic_auth("made-at-runtime", Some("runtime-secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", "read")])
            .send()
    };
    let r = get_token().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let at = json(r).await["access_token"].as_str().unwrap().to_owned();
    let r = http
        .get(format!("{}/protected", s.base))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(registry.delete_client("made-at-runtime").await.unwrap());
    assert_eq!(get_token().await.unwrap().status().as_u16(), 401);
}

#[rocket::async_test]
async fn a_toolkit_form_endpoint_authenticates_clients_keeps_state_and_answers_405_and_preflight() {
    let s = serve().await;
    let http = common::http_client();
    let url = format!("{}/oauth2/ticket", s.base);
    for expected in [1, 2] {
        let r = http
            .post(&url)
            .basic_auth("svc", Some("svc-secret"))
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body = json(r).await;
        assert_eq!(body["client_id"], "svc");
        assert_eq!(body["ticket"], expected, "state kept beside the server");
    }
    let r = http
        .post(&url)
        .basic_auth("svc", Some("wrong"))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(json(r).await["error"], "invalid_client");
    let r = http
        .post(&url)
        .basic_auth("rs", Some("rs-secret"))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(json(r).await["error"], "unauthorized_client");
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let r = http
        .request(reqwest::Method::OPTIONS, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        204,
        "a CORS form endpoint has its preflight"
    );

    // The token-issued hook sees every token response.
    let r = http
        .post(format!("{}/oauth2/token", s.base))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        *s.issued.0.lock().unwrap(),
        vec!["svc:client_credentials".to_owned()]
    );
}

// A toy flow of its own, built only with the public toolkit: a client asks for a pairing
// code at a `FormEndpoint`, a signed-in user approves it on a page protected by a
// `UserDecision`, and the client redeems it at the token endpoint through a `Grant`.

const PAIR: &str = "urn:example:params:oauth:grant-type:pair";

/// The pairing requests: code → (client, the approving subject once decided).
#[derive(Default)]
struct Pairings {
    next: std::sync::atomic::AtomicU64,
    codes: Mutex<std::collections::HashMap<String, (String, Option<String>)>>,
}

/// `POST <base>/pair`: a new pairing code for `client_id`.
struct PairStart(Arc<Pairings>);

#[rocket::async_trait]
impl twisted_oauth2::rocket::toolkit::FormEndpoint for PairStart {
    async fn handle(
        &self,
        server: &twisted_oauth2::AuthorizationServer,
        form: twisted_oauth2::endpoint::FormRequest<'_>,
    ) -> Result<String, OAuthError> {
        let params = form.params(server)?;
        let client_id = params.require("client_id")?;
        if server.client(client_id).await?.is_none() {
            return Err(OAuthError::new(ErrorCode::InvalidClient));
        }
        let n = self.0.next.fetch_add(1, Ordering::SeqCst);
        let code = format!("pair-{n}");
        self.0
            .codes
            .lock()
            .unwrap()
            .insert(code.clone(), (client_id.to_owned(), None));
        Ok(serde_json::json!({ "pair_code": code }).to_string())
    }
}

/// The pairing page's CSRF protection.
const PAIR_DECISION: twisted_oauth2::rocket::UserDecision =
    twisted_oauth2::rocket::UserDecision::new("pair");

/// `GET|POST <base>/pair/approve`: the page where `alice` (the toy's signed-in user)
/// approves a pairing code. Not framable; the decision is CSRF-checked and taken once.
#[derive(Clone)]
struct PairPage(Arc<Pairings>);

#[rocket::async_trait]
impl Handler for PairPage {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        use rocket::http::{ContentType, Header, Status};
        use rocket::response::Response;
        let Some(server) = twisted_oauth2::rocket::toolkit::server(req) else {
            return Outcome::Error(Status::InternalServerError);
        };
        let answer = |status: Status, body: String| {
            let mut r = Response::build();
            r.status(status)
                .header(ContentType::HTML)
                .header(Header::new("X-Frame-Options", "DENY"))
                .header(Header::new(
                    "Content-Security-Policy",
                    "frame-ancestors 'none'",
                ))
                .sized_body(body.len(), std::io::Cursor::new(body));
            Outcome::Success(r.finalize())
        };
        if req.method() == Method::Get {
            let code = req
                .query_value::<&str>("pair_code")
                .and_then(Result::ok)
                .unwrap_or_default();
            return match PAIR_DECISION.issue(req, server) {
                Ok(csrf) => answer(
                    Status::Ok,
                    format!(
                        "<form method=post><input name=pair_code value=\"{code}\">\
                         <input type=hidden name=csrf_token value=\"{csrf}\">\
                         <button name=decision value=allow>Allow</button></form>"
                    ),
                ),
                Err(_) => answer(Status::InternalServerError, String::new()),
            };
        }
        let body = match data
            .open(rocket::data::ByteUnit::Kibibyte(4))
            .into_bytes()
            .await
        {
            Ok(b) if b.is_complete() => b.into_inner(),
            _ => return answer(Status::PayloadTooLarge, String::new()),
        };
        let field = |name: &str| {
            url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        if PAIR_DECISION
            .verify(req, server, &field("csrf_token"))
            .is_err()
        {
            return answer(Status::Forbidden, "bad csrf".into());
        }
        let mut codes = self.0.codes.lock().unwrap();
        match codes.get_mut(&field("pair_code")) {
            Some((_, decided @ None)) if field("decision") == "allow" => {
                *decided = Some("alice".into());
                answer(Status::Ok, "approved".into())
            }
            _ => answer(Status::BadRequest, "nothing to approve".into()),
        }
    }
}

/// The pairing grant: `authorization_pending` until approved, then tokens once.
struct PairGrant(Arc<Pairings>);

#[async_trait]
impl Grant for PairGrant {
    fn grant_type(&self) -> &str {
        PAIR
    }

    async fn handle(
        &self,
        ctx: &GrantContext<'_>,
        req: &GrantRequest<'_>,
    ) -> Result<Issue, OAuthError> {
        let client = req.client()?;
        let code = req.params.require("pair_code")?;
        let scope = ctx.resolve_scope(req.params.get("scope"), client)?;
        let mut codes = self.0.codes.lock().unwrap();
        let subject = match codes.get(code) {
            Some((owner, _)) if owner != client.id() => None,
            Some((_, None)) => return Err(OAuthError::new(ErrorCode::AUTHORIZATION_PENDING)),
            Some((_, Some(subject))) => Some(subject.clone()),
            None => None,
        };
        let Some(subject) = subject else {
            return Err(OAuthError::invalid_grant("unknown pair_code"));
        };
        codes.remove(code);
        Ok(Issue::new(scope).subject(subject))
    }
}

#[rocket::async_test]
async fn a_toy_flow_of_endpoint_user_decision_and_grant_built_on_the_public_toolkit() {
    use rocket::http::{ContentType, Header, Status};
    use rocket::local::asynchronous::Client;

    let pairings = Arc::new(Pairings::default());
    let cfg = ServerConfig {
        issuer: "http://localhost".into(),
        allow_insecure_request_debug: true,
        clients: vec![ClientConfig {
            id: "toy".into(),
            secret: Some("toy-secret".into()),
            grant_types: vec![PAIR.into()],
            scopes: Some(vec!["read".into()]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let figment = rocket::Config::figment().merge(("oauth2", cfg));
    let fairing = OAuth2::fairing()
        .grant(Arc::new(PairGrant(pairings.clone())))
        .form_endpoint("/pair", PairStart(pairings.clone()))
        .endpoints(vec![
            Route::new(Method::Get, "/pair/approve", PairPage(pairings.clone())),
            Route::new(Method::Post, "/pair/approve", PairPage(pairings.clone())),
        ]);
    let client = Client::tracked(rocket::custom(figment).attach(fairing))
        .await
        .expect("launches");
    let basic = Header::new(
        "Authorization",
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("toy:toy-secret")
        ),
    );
    let poll = |code: String| {
        let (client, basic) = (&client, basic.clone());
        async move {
            let r = client
                .post("/oauth2/token")
                .header(ContentType::Form)
                .header(basic)
                .body(format!("grant_type={PAIR}&pair_code={code}&scope=read"))
                .dispatch()
                .await;
            let status = r.status();
            let body: serde_json::Value =
                serde_json::from_str(&r.into_string().await.unwrap_or_default()).unwrap();
            (status, body)
        }
    };

    // The endpoint: the toolkit's bounds and answers (405 for GET, no-store JSON).
    let r = client.get("/oauth2/pair").dispatch().await;
    assert_eq!(r.status(), Status::MethodNotAllowed);
    let r = client
        .post("/oauth2/pair")
        .header(ContentType::Form)
        .body("client_id=toy")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    let json: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    let code = json["pair_code"].as_str().unwrap().to_owned();

    let (status, body) = poll(code.clone()).await;
    assert_eq!(status, Status::BadRequest);
    assert_eq!(body["error"], "authorization_pending");

    // The decision: a post without the page's token is refused and decides nothing.
    let approve = |csrf: String| {
        client
            .post("/oauth2/pair/approve")
            .header(ContentType::Form)
            .body(format!("pair_code={code}&csrf_token={csrf}&decision=allow"))
            .dispatch()
    };
    assert_eq!(approve("forged".into()).await.status(), Status::Forbidden);
    assert_eq!(poll(code.clone()).await.1["error"], "authorization_pending");

    let page = client
        .get(format!("/oauth2/pair/approve?pair_code={code}"))
        .dispatch()
        .await;
    assert_eq!(page.status(), Status::Ok);
    assert_eq!(page.headers().get_one("X-Frame-Options"), Some("DENY"));
    let html = page.into_string().await.unwrap();
    let csrf = html
        .split("name=csrf_token value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(approve(csrf.clone()).await.status(), Status::Ok);
    assert_eq!(
        approve(csrf).await.status(),
        Status::Forbidden,
        "the page's token is spent once"
    );

    // The grant: tokens once, then the code is gone.
    let (status, body) = poll(code.clone()).await;
    assert_eq!(status, Status::Ok, "{body}");
    assert!(body["access_token"].is_string());
    let (status, body) = poll(code).await;
    assert_eq!(status, Status::BadRequest);
    assert_eq!(body["error"], "invalid_grant");
}

/// State of an extension's own that revocations must reach (as the JWT format's denylist):
/// a listener on the server's revocation channel.
#[derive(Default)]
struct HeardRevocations {
    subscribed: AtomicUsize,
    heard: Mutex<Vec<twisted_oauth2::storage::cache::Revocation>>,
    unreadable: AtomicUsize,
}

impl twisted_oauth2::storage::cache::RevocationListener for HeardRevocations {
    fn subscribed(&self) {
        self.subscribed.fetch_add(1, Ordering::SeqCst);
    }
    fn lost(&self) {
        self.subscribed.fetch_sub(1, Ordering::SeqCst);
    }
    fn deliver(&self, revocation: twisted_oauth2::storage::cache::Revocation) {
        self.heard.lock().unwrap().push(revocation);
    }
    fn deliver_unreadable(&self) {
        self.unreadable.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn an_extension_listens_on_a_revocation_channel_through_a_listener_sink() {
    use twisted_oauth2::storage::cache::{
        LocalOnly, Revocation, RevocationChannel, RevocationListener, RevocationSink,
    };
    let state = Arc::new(HeardRevocations::default());
    let as_listener: Arc<dyn RevocationListener> = state.clone();
    let sink = RevocationSink::listener(Arc::downgrade(&as_listener));
    LocalOnly.start(sink.clone()).expect("starts");
    assert_eq!(
        state.subscribed.load(Ordering::SeqCst),
        1,
        "told it is subscribed"
    );
    // What a networked channel does with what it receives.
    let r = Revocation::jti("a-jti", 1_800_000_000);
    sink.deliver(Revocation::decode(&r.encode()).expect("reads its own wire form"));
    sink.deliver_unreadable();
    assert_eq!(*state.heard.lock().unwrap(), vec![r]);
    assert_eq!(state.unreadable.load(Ordering::SeqCst), 1);
    assert!(!sink.is_closed());
    drop(as_listener);
    drop(state);
    assert!(
        sink.is_closed(),
        "the channel can stop once the listener is gone"
    );
}

const STATEFUL: &str = "urn:example:params:oauth:grant-type:stateful";

/// What the stateful grant keeps beside the server: its issuance count.
#[derive(Default)]
struct GrantCount(AtomicUsize);

/// A grant keeping state in the server's extension state through its `GrantContext` (no
/// `Arc` of its own), and making a fresh value with the server's generator.
struct StatefulGrant;

#[async_trait]
impl Grant for StatefulGrant {
    fn grant_type(&self) -> &str {
        STATEFUL
    }

    async fn handle(
        &self,
        ctx: &GrantContext<'_>,
        req: &GrantRequest<'_>,
    ) -> Result<Issue, OAuthError> {
        let client = req.client()?;
        let scope = ctx.resolve_scope(req.params.get("scope"), client)?;
        let n = ctx
            .extension_state(|_| GrantCount::default())
            .0
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        let handle = ctx.new_value(twisted_oauth2::token::TokenKind::Handle)?;
        Ok(Issue::new(scope)
            .response_member("issued_count", serde_json::json!(n))
            .response_member("handle", serde_json::json!(handle)))
    }
}

#[rocket::async_test]
async fn a_grant_shares_the_servers_extension_state_and_uses_its_generator() {
    let cfg = ServerConfig {
        issuer: "https://as.example".into(),
        clients: vec![ClientConfig {
            id: "st".into(),
            secret: Some("st-secret".into()),
            grant_types: vec![STATEFUL.into()],
            scopes: Some(vec!["read".into()]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let server = AuthorizationServer::builder(cfg)
        .grant(Arc::new(StatefulGrant))
        .build()
        .expect("valid config");
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("st:st-secret")
    );
    let body = format!("grant_type={STATEFUL}&scope=read");
    let mut handles = Vec::new();
    for expected in 1..=2 {
        let t = twisted_oauth2::endpoint::token::handle(
            &server,
            twisted_oauth2::endpoint::token::TokenRequest {
                body: body.as_bytes(),
                content_type: Some("application/x-www-form-urlencoded"),
                authorization: Some(&auth),
                transport: twisted_oauth2::endpoint::Transport { secure: true },
                ..Default::default()
            },
        )
        .await
        .expect("tokens");
        let v: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(v["issued_count"], expected);
        handles.push(v["handle"].as_str().unwrap().to_owned());
    }
    assert_ne!(handles[0], handles[1], "fresh values from the generator");
    // The grant's state is the server's: an endpoint (or the app) reads the same value.
    let count = server.extension_state(|_| GrantCount::default());
    assert_eq!(count.0.load(Ordering::Relaxed), 2);
}

// A flow of its own that keeps one server-side record per pending decision (as the code
// flow's consent does) decides it with the shared protections of `twisted_oauth2::decision`:
// the record names the browser's binding and its form's CSRF token; a forged post or one
// from another browser leaves it in place; of two concurrent posts exactly one takes it.

/// The application's pending decision.
#[derive(Clone)]
struct PendingPairing {
    binding: twisted_oauth2::token::TokenDigest,
    csrf_token: String,
    expires_at: i64,
    subject: String,
}

type Pending = Arc<Mutex<std::collections::HashMap<String, PendingPairing>>>;

async fn decide_pairing(
    store: Pending,
    id: &str,
    binding: &str,
    csrf: &str,
) -> Result<PendingPairing, twisted_oauth2::decision::DecisionRefused> {
    let peek = {
        let r = store.lock().unwrap().get(id).cloned();
        async move { Ok(r) }
    };
    let id = id.to_owned();
    twisted_oauth2::decision::take_once(
        peek,
        |r: &PendingPairing| {
            twisted_oauth2::decision::DecisionGuard::new(&r.binding, &r.csrf_token, r.expires_at)
        },
        1_000,
        Some(binding),
        csrf,
        move || {
            let taken = store.lock().unwrap().remove(&id);
            async move {
                // Yield so concurrent deciders interleave between peek and take.
                rocket::tokio::task::yield_now().await;
                Ok(taken)
            }
        },
    )
    .await
    .map_err(|e| e.expect("the in-memory store does not fail"))
}

#[rocket::async_test]
async fn a_flow_of_its_own_decides_a_bound_record_once_with_the_shared_decision_protections() {
    use twisted_oauth2::decision::DecisionRefused;
    let browser = "binding-value-of-the-browser-that-started-it";
    let store: Pending = Arc::new(Mutex::new(std::collections::HashMap::from([(
        "p1".to_owned(),
        PendingPairing {
            binding: twisted_oauth2::token::TokenDigest::of(browser),
            csrf_token: "csrf-of-the-rendered-form".into(),
            expires_at: 2_000,
            subject: "alice".into(),
        },
    )])));

    let other = decide_pairing(
        store.clone(),
        "p1",
        "binding-value-of-another-browser-entirely",
        "csrf-of-the-rendered-form",
    )
    .await;
    assert_eq!(other.err(), Some(DecisionRefused::OtherBrowser));
    let forged = decide_pairing(store.clone(), "p1", browser, "guessed").await;
    assert_eq!(forged.err(), Some(DecisionRefused::BadCsrfToken));
    assert!(
        store.lock().unwrap().contains_key("p1"),
        "refusals spend nothing"
    );

    let (a, b) = rocket::tokio::join!(
        decide_pairing(store.clone(), "p1", browser, "csrf-of-the-rendered-form"),
        decide_pairing(store.clone(), "p1", browser, "csrf-of-the-rendered-form"),
    );
    let winners: Vec<_> = [a, b].into_iter().filter_map(Result::ok).collect();
    assert_eq!(winners.len(), 1, "exactly one concurrent decision wins");
    assert_eq!(winners[0].subject, "alice");
    let again = decide_pairing(store.clone(), "p1", browser, "csrf-of-the-rendered-form").await;
    assert_eq!(again.err(), Some(DecisionRefused::Unknown));
}
