//! A test client for the application's own tests (feature `test-client`): tokens for a user
//! and scopes in one call, or the code flow, refresh and revocation step by step, over
//! Rocket's [`rocket::local::asynchronous::Client`].
//!
//! ```
//! use rocket::local::asynchronous::Client;
//! use rocket::{get, routes};
//! use twisted_oauth2::rocket::{OAuth2, SignedIn};
//! use twisted_oauth2::testing::{bearer, TestClient};
//! use twisted_oauth2::oauth;
//!
//! #[oauth(scope = "VIEW_CLOCK")]
//! #[get("/clock")]
//! fn clock() -> &'static str {
//!     "12:00"
//! }
//!
//! struct NobodySignedIn;
//! #[rocket::async_trait]
//! impl SignedIn for NobodySignedIn {
//!     async fn user(&self, _: &rocket::Request<'_>) -> Option<String> { None }
//! }
//!
//! # rocket::execute(async {
//! use rocket::figment::providers::{Format, Toml};
//! const CONFIG: &str = r#"
//! [default]
//! log_level = "off"
//!
//! [default.oauth2]
//! issuer = "http://127.0.0.1:8000"
//! allow_insecure_request_debug = true   # the local client speaks plain HTTP
//!
//! [[default.oauth2.clients]]
//! id = "app"
//! redirect_uris = ["http://127.0.0.1:9000/cb"]
//! grant_types = ["authorization_code", "refresh_token"]
//! "#;
//! // Not `Config::figment()`: a test should not read the working directory's Rocket.toml.
//! let figment = rocket::figment::Figment::from(rocket::Config::debug_default())
//!     .merge(Toml::string(CONFIG).nested());
//! let app = rocket::custom(figment)
//!     .attach(OAuth2::fairing().builtin_consent(NobodySignedIn, "/login"))
//!     .mount("/", routes![clock]);
//! let client = Client::untracked(app).await.expect("valid rocket");
//!
//! let tokens = TestClient::new(&client).token("app", "alice", "VIEW_CLOCK").await.unwrap();
//! let res = client.get("/clock").header(bearer(&tokens.access_token)).dispatch().await;
//! assert_eq!(res.status(), rocket::http::Status::Ok);
//! # });
//! ```
//!
//! The chapter "Testing your app" of the guide (`docs/testing.md`) walks through every
//! method.

use std::collections::HashMap;
use std::sync::Arc;

use rocket::http::{ContentType, Header};
use rocket::local::asynchronous::Client;

use crate::endpoint::authorize::{self, Grant};
use crate::endpoint::Transport;
use crate::error::OAuthError;
use crate::pkce::s256_challenge;
use crate::rocket::OAuth2State;
use crate::server::AuthorizationServer;
use crate::token::{RandomTokenGenerator, TokenGenerator, TokenKind, TokenResponse};

/// An `Authorization: Bearer <access_token>` header for a local request.
pub fn bearer(access_token: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {access_token}"))
}

/// What went wrong in a [`TestClient`] call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestClientError {
    /// The Rocket instance has no [`OAuth2`](crate::rocket::OAuth2) fairing.
    #[error("the twisted-oauth2 fairing is not attached to this Rocket instance")]
    NotAttached,
    /// No client with this id is registered.
    #[error("no client `{0}` is registered")]
    UnknownClient(String),
    /// The client has no redirect URI, so the code flow cannot run.
    #[error("client `{0}` has no redirect URI")]
    NoRedirectUri(String),
    /// The authorization request was refused (bad scope, missing grant, ...).
    #[error("the authorization request was refused: {0}")]
    Authorization(OAuthError),
    /// The redirect back to the client carries an error (`access_denied`, ...), or does
    /// not match the request (other `state` or `iss`, no `code`).
    #[error("the redirect to the client is not a successful answer: {0}")]
    Redirect(String),
    /// An endpoint answered with an error status.
    #[error("{endpoint} answered {status}: {body}")]
    Endpoint {
        /// `token` or `revoke`.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The body (the OAuth error JSON).
        body: String,
    },
    /// A token answer that is not the JSON of RFC 6749 §5.1.
    #[error("the token endpoint's answer is not a token response: {0}")]
    Malformed(String),
    /// No random value could be made.
    #[error("no random value could be made: {0}")]
    Random(String),
}

/// One authorization request of a step-by-step code flow: PKCE verifier, `state` and the
/// URI to send the browser to. Made by [`TestClient::authorization`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthorizationRequest {
    /// The `client_id`.
    pub client_id: String,
    /// The `redirect_uri` sent (the client's first registered one unless changed).
    pub redirect_uri: String,
    /// The requested scope (space-separated; empty for the server's `default_scope`).
    pub scope: String,
    /// The `state` sent; [`TestClient::exchange`] checks it comes back.
    pub state: String,
    /// The PKCE `code_verifier`; its S256 challenge is sent.
    pub code_verifier: String,
    /// The `resource` sent (RFC 8707), from [`TestClient::resource`].
    pub resource: Option<String>,
    endpoints_path: String,
}

impl AuthorizationRequest {
    /// The query string of the authorization request.
    pub fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri);
        if !self.scope.is_empty() {
            q.append_pair("scope", &self.scope);
        }
        q.append_pair("state", &self.state)
            .append_pair("code_challenge", &s256_challenge(&self.code_verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(r) = &self.resource {
            q.append_pair("resource", r);
        }
        q.finish()
    }

    /// The local URI to `GET` in the browser's place: `<base>/authorize?…`.
    pub fn uri(&self) -> String {
        format!(
            "{}/authorize?{}",
            self.endpoints_path.trim_end_matches('/'),
            self.query()
        )
    }
}

/// Drives the app's OAuth endpoints from its own tests, over a local Rocket client.
///
/// Confidential clients authenticate with the secret given to [`TestClient::secret`]
/// (`client_secret_post`); public clients send `client_id` only. When the server has a
/// `trusted_proxy_header`, requests carry it with `https`; otherwise the app under test
/// needs TLS configured or `allow_insecure_request_debug = true` in its test
/// configuration, as the token endpoint refuses plain HTTP.
pub struct TestClient<'c> {
    client: &'c Client,
    secrets: HashMap<String, String>,
    resource: Option<String>,
    /// The client [`TestClient::register`] made, reused by [`TestClient::user_token`].
    registered: rocket::tokio::sync::OnceCell<String>,
}

impl std::fmt::Debug for TestClient<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient").finish_non_exhaustive()
    }
}

impl<'c> TestClient<'c> {
    /// A test client for the app behind `client`.
    pub fn new(client: &'c Client) -> Self {
        TestClient {
            client,
            secrets: HashMap::new(),
            resource: None,
            registered: rocket::tokio::sync::OnceCell::new(),
        }
    }

    /// Names `resource` (RFC 8707) in every authorization and token request, as MCP clients
    /// name the MCP endpoint (`"https://mcp.example/mcp"`): the tokens are for it.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Registers a public client at the app's registration endpoint (RFC 7591), as an MCP
    /// client arriving unregistered does: a loopback redirect URI, the authorization code and
    /// refresh token grants, no secret. Returns its `client_id`. Needs
    /// `[oauth2.registration] enabled = true`.
    pub async fn register(&self) -> Result<String, TestClientError> {
        let server = self.server()?;
        let uri = format!("{}/register", server.endpoints_path().trim_end_matches('/'));
        let metadata = serde_json::json!({
            "client_name": "twisted-oauth2 TestClient",
            "redirect_uris": [REGISTERED_REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        let mut req = self
            .client
            .post(uri)
            .header(ContentType::JSON)
            .body(metadata.to_string());
        if let Some(h) = &server.config().trusted_proxy_header {
            req = req.header(Header::new(h.clone(), "https"));
        }
        let res = req.dispatch().await;
        let status = res.status().code;
        let text = res.into_string().await.unwrap_or_default();
        if status != 201 {
            return Err(TestClientError::Endpoint {
                endpoint: "register",
                status,
                body: text,
            });
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| TestClientError::Malformed(e.to_string()))?;
        v["client_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| TestClientError::Malformed("no client_id".into()))
    }

    /// Tokens for `user` with `scope` like [`TestClient::token`], through the first
    /// configured client that may use the code grant, or, when the app has none (an MCP
    /// server whose clients all register), a client this test client registers itself
    /// ([`TestClient::register`], once).
    pub async fn user_token(
        &self,
        user: &str,
        scope: &str,
    ) -> Result<TokenResponse, TestClientError> {
        let server = self.server()?;
        let configured = server.config().clients.iter().find(|c| {
            !c.redirect_uris.is_empty() && c.grant_types.iter().any(|g| g == "authorization_code")
        });
        let client_id = match configured {
            Some(c) => c.id.clone(),
            None => self
                .registered
                .get_or_try_init(|| self.register())
                .await?
                .clone(),
        };
        self.token(&client_id, user, scope).await
    }

    /// The secret of the confidential client `client_id` (the plain value from the test
    /// configuration).
    pub fn secret(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.secrets.insert(client_id.into(), secret.into());
        self
    }

    /// The authorization server from the fairing's managed state.
    /// [`TestClientError::NotAttached`] too when the fairing runs resource-server-only.
    pub fn server(&self) -> Result<&'c Arc<AuthorizationServer>, TestClientError> {
        self.client
            .rocket()
            .state::<OAuth2State>()
            .and_then(OAuth2State::server)
            .ok_or(TestClientError::NotAttached)
    }

    /// Tokens for `user` with `scope` (space-separated; `""` for the `default_scope`),
    /// consent approved: validates an authorization request for `client_id` in the core,
    /// grants it as `user`, and exchanges the code at the app's token endpoint (with PKCE).
    /// The app's consent page and login are not involved.
    pub async fn token(
        &self,
        client_id: &str,
        user: &str,
        scope: &str,
    ) -> Result<TokenResponse, TestClientError> {
        let server = self.server()?;
        let request = self.authorization(client_id, scope).await?;
        let binding = random()?;
        // The request never crossed HTTP; the test stands in for a browser on TLS.
        let transport = Transport { secure: true };
        let pending = authorize::validate(server, request.query().as_bytes(), transport, &binding)
            .await
            .map_err(|e| TestClientError::Authorization(e.error().clone()))?;
        let grant = Grant {
            subject: Some(user.to_owned()),
            ..Grant::default()
        };
        let redirect = authorize::grant(
            server,
            &pending.request_id,
            Some(&binding),
            &pending.csrf_token,
            grant,
        )
        .await
        .map_err(|e| TestClientError::Authorization(e.error().clone()))?;
        self.exchange(&request, redirect.location()).await
    }

    /// A new authorization request for `client_id` and `scope`, with a fresh PKCE
    /// verifier and `state`, to the client's first redirect URI. `GET` its
    /// [`uri`](AuthorizationRequest::uri) with the local client, go through the app's login
    /// and consent pages, then hand the final redirect to [`TestClient::exchange`].
    pub async fn authorization(
        &self,
        client_id: &str,
        scope: &str,
    ) -> Result<AuthorizationRequest, TestClientError> {
        let server = self.server()?;
        let client = server
            .client(client_id)
            .await
            .map_err(TestClientError::Authorization)?
            .ok_or_else(|| TestClientError::UnknownClient(client_id.to_owned()))?;
        let redirect_uri = client
            .redirect_uris()
            .first()
            .ok_or_else(|| TestClientError::NoRedirectUri(client_id.to_owned()))?
            .as_str()
            .to_owned();
        Ok(AuthorizationRequest {
            client_id: client_id.to_owned(),
            redirect_uri,
            scope: scope.to_owned(),
            state: random()?,
            code_verifier: random()?,
            resource: self.resource.clone(),
            endpoints_path: server.endpoints_path(),
        })
    }

    /// Takes the redirect back to the client (`location`: the `Location` of the last
    /// answer), checks `state` and `iss`, and exchanges the `code` at the token endpoint.
    pub async fn exchange(
        &self,
        request: &AuthorizationRequest,
        location: &str,
    ) -> Result<TokenResponse, TestClientError> {
        let server = self.server()?;
        let url = url::Url::parse(location)
            .map_err(|e| TestClientError::Redirect(format!("`{location}`: {e}")))?;
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(error) = param("error") {
            let description = param("error_description").unwrap_or_default();
            return Err(TestClientError::Redirect(format!("{error}: {description}")));
        }
        if param("state").as_deref() != Some(request.state.as_str()) {
            return Err(TestClientError::Redirect("the state does not match".into()));
        }
        if param("iss").as_deref() != Some(server.issuer()) {
            return Err(TestClientError::Redirect("iss is not the issuer".into()));
        }
        let code = param("code").ok_or_else(|| TestClientError::Redirect("no code".into()))?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("code_verifier", request.code_verifier.as_str()),
        ];
        if let Some(r) = &request.resource {
            form.push(("resource", r));
        }
        self.token_request(&request.client_id, &form).await
    }

    /// Uses a refresh token (`grant_type=refresh_token`); the answer carries the rotated
    /// refresh token.
    pub async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, TestClientError> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(r) = &self.resource {
            form.push(("resource", r));
        }
        self.token_request(client_id, &form).await
    }

    /// Tokens for a confidential client itself (`grant_type=client_credentials`).
    pub async fn client_credentials(
        &self,
        client_id: &str,
        scope: &str,
    ) -> Result<TokenResponse, TestClientError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        if let Some(r) = &self.resource {
            form.push(("resource", r));
        }
        self.token_request(client_id, &form).await
    }

    /// Revokes an access or refresh token at the revocation endpoint (RFC 7009).
    pub async fn revoke(&self, client_id: &str, token: &str) -> Result<(), TestClientError> {
        self.post("revoke", client_id, &[("token", token)])
            .await
            .map(|_| ())
    }

    async fn token_request(
        &self,
        client_id: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, TestClientError> {
        let body = self.post("token", client_id, form).await?;
        serde_json::from_str(&body).map_err(|e| TestClientError::Malformed(e.to_string()))
    }

    /// Posts `form` plus the client's credentials to `<base>/<endpoint>`; the body of a
    /// `200`, else [`TestClientError::Endpoint`].
    async fn post(
        &self,
        endpoint: &'static str,
        client_id: &str,
        form: &[(&str, &str)],
    ) -> Result<String, TestClientError> {
        let server = self.server()?;
        // Built in a block: the serializer is not `Send` and must not live across `.await`.
        let body = {
            let mut body = url::form_urlencoded::Serializer::new(String::new());
            body.extend_pairs(form).append_pair("client_id", client_id);
            if let Some(secret) = self.secrets.get(client_id) {
                body.append_pair("client_secret", secret);
            }
            body.finish()
        };
        let uri = format!(
            "{}/{endpoint}",
            server.endpoints_path().trim_end_matches('/')
        );
        let mut req = self.client.post(uri).header(ContentType::Form).body(body);
        if let Some(h) = &server.config().trusted_proxy_header {
            req = req.header(Header::new(h.clone(), "https"));
        }
        let res = req.dispatch().await;
        let status = res.status().code;
        let text = res.into_string().await.unwrap_or_default();
        if status == 200 {
            Ok(text)
        } else {
            Err(TestClientError::Endpoint {
                endpoint,
                status,
                body: text,
            })
        }
    }
}

/// The redirect URI of the client [`TestClient::register`] registers (nothing listens there:
/// the code is read from the redirect).
pub const REGISTERED_REDIRECT_URI: &str = "http://127.0.0.1:53686/callback";

fn random() -> Result<String, TestClientError> {
    RandomTokenGenerator
        .generate(TokenKind::Handle)
        .map_err(|e| TestClientError::Random(e.to_string()))
}
