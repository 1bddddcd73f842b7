//! The extension seams, used from outside the crate with its public API only and exercised
//! over real HTTP (a Rocket server on a loopback port, `reqwest` as the client):
//! a grant of the application answering its own RFC error codes with headers and reading
//! the request's headers; a self-contained access-token format (issued, validated at a
//! protected route, introspected, revoked); an endpoint mounted beside the built-ins with a
//! member added to the RFC 8414 document; a client created at run time through the
//! writable client store; a form endpoint built on the public toolkit
//! (`twisted_oauth2::rocket::toolkit`) authenticating clients as the token endpoint does,
//! keeping extension state beside the server, with a hook on every token response.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use oauth2::reqwest;
use rocket::http::Method;
use rocket::route::{Handler, Outcome, Route};
use rocket::{get, routes, Data, Request};
use sha2::Sha256;
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::context::GrantContext;
use twisted_oauth2::error::StorageError;
use twisted_oauth2::format::{AccessTokenFormat, FormatContext};
use twisted_oauth2::grant::{ClientAuthentication, Grant, GrantRequest, Issue};
use twisted_oauth2::rocket::{OAuth2, OAuth2State};
use twisted_oauth2::storage::{GrantId, TokenRecord};
use twisted_oauth2::{oauth, ErrorCode, OAuthError, Scope};

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
        Ok(Issue::new(scope)
            .subject("device-user")
            .response_member("device_note", serde_json::json!("polled")))
    }
}

type Mac256 = Hmac<Sha256>;

/// Self-contained access tokens: `st.<record as JSON>.<HMAC-SHA256>`, base64url; nothing
/// is stored at issuance. Revocation keeps a deny-list and grant tombstones.
#[derive(Default)]
struct SignedTokens {
    denied: Mutex<HashSet<String>>,
    revoked_grants: Mutex<HashMap<GrantId, i64>>,
}

impl SignedTokens {
    const KEY: &'static [u8] = b"test key: never a real secret";

    fn mac(payload: &str) -> Mac256 {
        let mut mac = Mac256::new_from_slice(Self::KEY).expect("any key length");
        mac.update(payload.as_bytes());
        mac
    }

    fn decode(&self, token: &str) -> Option<TokenRecord> {
        let rest = token.strip_prefix("st.")?;
        let (payload, sig) = rest.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        Self::mac(payload).verify_slice(&sig).ok()?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

#[async_trait]
impl AccessTokenFormat for SignedTokens {
    async fn issue(
        &self,
        ctx: &FormatContext<'_>,
        record: &TokenRecord,
    ) -> Result<String, StorageError> {
        if self
            .revoked_grants
            .lock()
            .unwrap()
            .get(&record.grant_id)
            .is_some_and(|until| *until > ctx.now())
        {
            return Err(StorageError::GrantRevoked);
        }
        let json = serde_json::to_vec(record).map_err(StorageError::other)?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let sig = URL_SAFE_NO_PAD.encode(Self::mac(&payload).finalize().into_bytes());
        Ok(format!("st.{payload}.{sig}"))
    }

    async fn validate(
        &self,
        _ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError> {
        if self.denied.lock().unwrap().contains(token) {
            return Ok(None);
        }
        let record = self.decode(token);
        Ok(record.filter(|r| {
            !self
                .revoked_grants
                .lock()
                .unwrap()
                .contains_key(&r.grant_id)
        }))
    }

    async fn revoke(
        &self,
        ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError> {
        let live = self.validate(ctx, token).await?;
        self.denied.lock().unwrap().insert(token.to_owned());
        Ok(live)
    }

    async fn revoke_grant(
        &self,
        _ctx: &FormatContext<'_>,
        grant: GrantId,
        until: i64,
    ) -> Result<u64, StorageError> {
        self.revoked_grants.lock().unwrap().insert(grant, until);
        Ok(0)
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
            .map(|s| s.server().issuer().to_owned())
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

fn config(port: u16) -> ServerConfig {
    let svc = ClientConfig {
        id: "svc".into(),
        secret: Some("svc-secret".into()),
        grant_types: vec!["client_credentials".into(), POLL.into()],
        scopes: Some(vec!["read".into()]),
        ..Default::default()
    };
    let rs = ClientConfig {
        id: "rs".into(),
        secret: Some("rs-secret".into()),
        introspect: true,
        ..Default::default()
    };
    ServerConfig {
        issuer: format!("http://127.0.0.1:{port}"),
        allow_insecure_request_debug: true,
        clients: vec![svc, rs],
        ..Default::default()
    }
}

struct Served {
    base: String,
    issued: Arc<IssuedLog>,
    server: Arc<twisted_oauth2::AuthorizationServer>,
    _shutdown: common::Demo,
}

async fn serve() -> Served {
    let port = common::free_port();
    let figment = common::demo_figment(port).merge(("oauth2", config(port)));
    let issued = Arc::new(IssuedLog::default());
    let rocket = rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .grant(Arc::new(PollGrant))
                .form_endpoint("/ticket", Ticket)
                .on_token_issued(issued.clone())
                .access_token_format(Arc::new(SignedTokens::default()))
                .endpoint(Route::new(Method::Get, "/hello", Hello))
                .metadata_member(
                    "hello_endpoint",
                    serde_json::json!(format!("http://127.0.0.1:{port}/oauth2/hello")),
                ),
        )
        .mount("/", routes![protected]);
    let ignited = rocket.ignite().await.expect("ignites");
    let server = ignited
        .state::<OAuth2State>()
        .expect("fairing state")
        .server()
        .clone();
    let served = common::launch(ignited, port).await;
    Served {
        base: served.base.clone(),
        issued,
        _shutdown: served,
        server,
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

#[rocket::async_test]
async fn a_self_contained_token_format_is_issued_validated_introspected_and_revoked() {
    let s = serve().await;
    let http = common::http_client();
    let v = json(
        http.post(format!("{}/oauth2/token", s.base))
            .basic_auth("svc", Some("svc-secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", "read")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let at = v["access_token"].as_str().unwrap().to_owned();
    assert!(at.starts_with("st."), "the format made the value: {at}");
    let get = |t: String| {
        http.get(format!("{}/protected", s.base))
            .bearer_auth(t)
            .send()
    };
    assert_eq!(get(at.clone()).await.unwrap().status().as_u16(), 200);
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
        let mut rec: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        rec["scope"] = serde_json::json!("read admin");
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&rec).unwrap());
        format!("st.{payload}.{}", parts[2])
    };
    assert_eq!(get(forged).await.unwrap().status().as_u16(), 401);
    let r = http
        .post(format!("{}/oauth2/revoke", s.base))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(get(at.clone()).await.unwrap().status().as_u16(), 401);
    assert_eq!(json(introspect(at).await.unwrap()).await["active"], false);
    let _ = Scope::parse("read");
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
