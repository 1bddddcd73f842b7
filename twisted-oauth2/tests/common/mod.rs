//! Shared fixtures for protocol tests: a server with memory stores, a fixed clock and a
//! sequential token generator.
#![allow(dead_code, unreachable_pub)]

pub mod log_capture;

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::endpoint::authorize::{self, Grant};
use twisted_oauth2::endpoint::token::{self, TokenRequest};
use twisted_oauth2::endpoint::Transport;
use twisted_oauth2::pkce::s256_challenge;
use twisted_oauth2::token::{SequentialTokenGenerator, TokenResponse};
use twisted_oauth2::{AuthorizationServer, OAuthError};

pub const T0: i64 = 1_800_000_000;
pub const REDIRECT: &str = "https://client.example/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const BINDING: &str = "browser-binding-value-0123456789abcdef";

pub fn client(id: &str, secret: Option<&str>, grants: &[&str], scopes: &[&str]) -> ClientConfig {
    ClientConfig {
        id: id.into(),
        secret: secret.map(Into::into),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: grants.iter().map(|s| s.to_string()).collect(),
        scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

pub fn config() -> ServerConfig {
    ServerConfig {
        issuer: "https://as.example".into(),
        clients: vec![
            client(
                "svc",
                Some("svc-secret"),
                &["client_credentials"],
                &["a", "b"],
            ),
            client(
                "web",
                None,
                &["authorization_code", "refresh_token"],
                &["a", "b", "c"],
            ),
            client(
                "app",
                Some("app-secret"),
                &["authorization_code", "refresh_token"],
                &["a", "b", "c"],
            ),
            client(
                "other",
                Some("other-secret"),
                &["authorization_code", "refresh_token", "client_credentials"],
                &["a", "b", "c"],
            ),
        ],
        ..Default::default()
    }
}

pub struct Fixture {
    pub server: Arc<AuthorizationServer>,
    pub clock: Arc<FixedClock>,
}

pub fn fixture_with(cfg: ServerConfig) -> Fixture {
    let clock = Arc::new(FixedClock::at(T0));
    let server = AuthorizationServer::builder(cfg)
        .clock(clock.clone())
        .generator(Arc::new(SequentialTokenGenerator::default()))
        .build()
        .expect("valid test config");
    Fixture {
        server: Arc::new(server),
        clock,
    }
}

pub fn fixture() -> Fixture {
    fixture_with(config())
}

pub const FORM: &str = "application/x-www-form-urlencoded";
pub const SECURE: Transport = Transport { secure: true };

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

impl Fixture {
    /// POSTs `body` to the token endpoint with optional Basic credentials.
    pub async fn token(
        &self,
        body: &str,
        auth: Option<(&str, &str)>,
    ) -> Result<TokenResponse, OAuthError> {
        let header = auth.map(|(i, s)| basic(i, s));
        token::handle(
            &self.server,
            TokenRequest {
                body: body.as_bytes(),
                content_type: Some(FORM),
                authorization: header.as_deref(),
                query: None,
                transport: SECURE,
                ..Default::default()
            },
        )
        .await
    }

    /// Runs the authorization endpoint and grants for `alice`; returns the code.
    pub async fn code(&self, client_id: &str, scope: &str, with_pkce: bool) -> String {
        let mut q = format!("response_type=code&client_id={client_id}&scope={scope}&state=xyz");
        if with_pkce {
            q.push_str(&format!(
                "&code_challenge={}&code_challenge_method=S256",
                s256_challenge(VERIFIER)
            ));
        }
        self.code_for_query(&q).await
    }

    /// Runs the authorization endpoint with query `q`, grants for `alice` with extra data,
    /// and returns the code from the redirect.
    pub async fn code_for_query(&self, q: &str) -> String {
        let pending = authorize::validate(&self.server, q.as_bytes(), SECURE, BINDING)
            .await
            .expect("valid authorization request");
        let grant = Grant {
            subject: Some("alice".into()),
            scope: None,
            extra: Some(serde_json::json!({"role": "admin"})),
        };
        let redirect = authorize::grant(
            &self.server,
            &pending.request_id,
            Some(BINDING),
            &pending.csrf_token,
            grant,
        )
        .await
        .expect("grant succeeds");
        let url = url::Url::parse(redirect.location()).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code in redirect")
    }

    /// Exchanges a PKCE code of the public client `web`.
    pub async fn redeem_web(&self, code: &str) -> Result<TokenResponse, OAuthError> {
        self.token(
            &format!(
                "grant_type=authorization_code&code={code}&client_id=web&code_verifier={VERIFIER}"
            ),
            None,
        )
        .await
    }

    /// Whether `token` is accepted as an access token.
    pub async fn access_ok(&self, token: &str) -> bool {
        twisted_oauth2::endpoint::resource::lookup(&self.server, token, "")
            .await
            .is_ok()
    }
}

/// A consent hook that refuses every request, for adapter tests of other endpoints (the
/// fairing refuses to launch code-grant clients without a hook).
pub struct NoConsent;

#[rocket::async_trait]
impl twisted_oauth2::rocket::OnAuthenticate for NoConsent {
    async fn on_authenticate(
        &self,
        _req: &rocket::Request<'_>,
        _pending: twisted_oauth2::endpoint::authorize::PendingAuthorization,
    ) -> Result<twisted_oauth2::rocket::Consent, OAuthError> {
        Err(OAuthError::new(twisted_oauth2::ErrorCode::AccessDenied))
    }
}

/// Unix seconds now.
pub fn unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Puts a fresh authorization code for `app` straight into the store; returns its value.
pub async fn put_code(stores: &twisted_oauth2::storage::Stores) -> String {
    let code = format!("code-{:032x}", rand::random::<u128>());
    let record = twisted_oauth2::storage::CodeRecord::new(
        "app",
        REDIRECT,
        twisted_oauth2::Scope::from_tokens(["a", "b"]).unwrap_or_default(),
        twisted_oauth2::storage::GrantId::random(),
        unix() + 60,
    )
    .with_redirect_uri_sent(false)
    .with_subject("alice");
    if let Err(e) = stores
        .codes
        .put_code(&twisted_oauth2::token::TokenDigest::of(&code), &record)
        .await
    {
        panic!("put_code: {e}");
    }
    code
}
