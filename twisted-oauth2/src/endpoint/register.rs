//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).
//!
//! `POST <base>/register` takes the client's metadata as JSON and answers `201 Created`
//! with the registered metadata, a `client_id`, a `client_secret` for the
//! `client_secret_*` methods, a `registration_access_token` and the
//! `registration_client_uri` (`<base>/register/<client_id>`), where the client reads
//! (`GET`), replaces (`PUT`) or deletes (`DELETE`) its registration with
//! `Authorization: Bearer <registration_access_token>` (RFC 7592 §2).
//!
//! # Policy
//!
//! Set by [`RegistrationConfig`] (`[default.oauth2.registration]`); off by default.
//!
//! - Registration is open, or needs an initial access token (RFC 7591 §3:
//!   `Authorization: Bearer <token>`, whose SHA-256 the configuration holds, compared in
//!   constant time). Without it: `401 invalid_token` with a `Bearer` challenge.
//! - `token_endpoint_auth_method` defaults to `none` (a public client); a secret is issued
//!   only for `client_secret_basic` and `client_secret_post`, and never expires
//!   (`client_secret_expires_at: 0`). `grant_types` defaults to `["authorization_code"]`;
//!   only `authorization_code`, `refresh_token` and (with a secret) `client_credentials`
//!   are registrable, and only when the server enables them. `response_types` is `["code"]`
//!   exactly when `authorization_code` is registered.
//! - Redirect URIs must be absolute, without fragment, and of an allowed kind: loopback
//!   `http://127.0.0.1` / `http://[::1]` (any port at authorization time, RFC 8252 §7.3),
//!   `https`, private-use schemes (`com.example.app:/cb`, RFC 8252 §7.1), and
//!   `http://localhost` only when [`RegistrationConfig::allow_localhost`] is set. Others are
//!   `invalid_redirect_uri`; any other bad member is `invalid_client_metadata`.
//! - **Scope.** A registered `scope` is echoed but does not restrict the client: a later
//!   authorization request may ask for more (the step-up of MCP clients), checked against
//!   the server's `scopes_supported` as for every client. With
//!   [`RegistrationConfig::restrict_scope`] the registered scope becomes the client's
//!   allowed scopes.
//! - Registered clients are created through
//!   [`AuthorizationServer::client_registry`] as unverified
//!   ([`Client::is_verified`] is `false`, the consent page says so), so they live in the
//!   writable store (memory, SQLite, PostgreSQL, Redis).
//! - **Unused registrations expire.** A client registered with
//!   [`RegistrationConfig::unused_client_lifetime`] set gets [`Client::expires_at`]; the
//!   first token issued to it clears it. A lookup of an expired client finds nothing and
//!   deletes it from the registry (revoking any token it holds); [`Purge::purge_expired`](crate::storage::Purge::purge_expired)
//!   deletes expired clients of the store too.
//! - `client_credentials` is registrable only with an initial access token or
//!   [`RegistrationConfig::open_client_credentials`], and its registered `scope` (else the
//!   server's `default_scope`) is then the client's ceiling.
//! - Requests to `POST /register` are rate-limited per client address
//!   ([`AuthorizationServer::client_address`]; per /64 for IPv6;
//!   [`RegistrationConfig::rate_limit_per_minute`] and
//!   [`RegistrationConfig::max_registrations_per_address`]); over a limit: `429` with
//!   `Retry-After`. Each limiter holds at most [`RegistrationConfig::rate_limit_max_ips`]
//!   addresses; beyond, new addresses share a bucket per prefix, then one overflow bucket.
//! - At most [`RegistrationConfig::max_unused_clients`] registrations without a token are
//!   kept: each registration beyond deletes the oldest unused ones
//!   ([`ClientRegistry::trim_unused_clients`](crate::storage::ClientRegistry::trim_unused_clients)).
//! - The registered `token_endpoint_auth_method` is enforced at client authentication, and
//!   the registration access token rotates on every `PUT` (RFC 7592 §3).
//! - Every input is bounded: the body by `max_body_size`, at most
//!   [`MAX_REDIRECT_URIS`] redirect URIs of [`MAX_URI_LENGTH`] bytes, a `client_name` of
//!   [`MAX_NAME_LENGTH`] bytes, a `scope` of `max_scope_length` bytes. Unknown members are
//!   ignored (RFC 7591 §3.1) and never echoed; a member whose value is `null` counts as
//!   absent, and the response never holds a `null`.

use std::net::IpAddr;

use serde_json::{Map, Value};

pub use crate::client::RegistrationInfo;
pub use crate::config::RegistrationConfig;

use crate::client::{Client, SecretDigest};
use crate::endpoint::{require_secure, Transport};
use crate::error::{Challenge, ErrorCode, OAuthError, StorageError};
use crate::grant_type::GrantType;
use crate::scope::Scope;
use crate::server::AuthorizationServer;
use crate::token::TokenKind;

use crate::client_metadata::rfc7591::{member, metadata_error, validate_with, Metadata};
pub use crate::client_metadata::rfc7591::{MAX_NAME_LENGTH, MAX_REDIRECT_URIS, MAX_URI_LENGTH};

/// A registration or management request as the HTTP layer received it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistrationRequest<'a> {
    /// The raw body (already capped at `max_body_size`).
    pub body: &'a [u8],
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// Transport facts.
    pub transport: Transport,
    /// The client's IP address, for the rate limit (`None`: one shared bucket).
    pub client_ip: Option<IpAddr>,
}

/// The answer to a successful registration, read or update: the client information
/// response (RFC 7591 §3.2.1, RFC 7592 §3), a JSON object without `null` members.
#[derive(Debug, Clone)]
pub struct ClientInformation {
    members: Map<String, Value>,
}

impl ClientInformation {
    /// The JSON body.
    pub fn to_json(&self) -> String {
        Value::Object(self.members.clone()).to_string()
    }

    /// The members.
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }
}

fn invalid_token(description: &'static str) -> OAuthError {
    OAuthError::with_description(ErrorCode::InvalidToken, description)
        .with_challenge(Challenge::Bearer { scope: None })
}

/// The bearer token of an `Authorization` header.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    let v = authorization?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn is_json_content_type(ct: Option<&str>) -> bool {
    ct.and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// The checks before reading the metadata: enabled, HTTPS, JSON body, a JSON object.
fn parse_body(
    server: &AuthorizationServer,
    req: &RegistrationRequest<'_>,
) -> Result<Map<String, Value>, OAuthError> {
    require_secure(server, req.transport)?;
    if !is_json_content_type(req.content_type) {
        return Err(OAuthError::invalid_request(
            "the Content-Type must be application/json",
        ));
    }
    if req.body.len() as u64 > server.config().max_body_size {
        return Err(OAuthError::body_too_large(server.config().max_body_size));
    }
    match serde_json::from_slice::<Value>(req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(metadata_error("the client metadata must be a JSON object")),
        Err(_) => Err(metadata_error("the body is not valid JSON")),
    }
}

fn disabled() -> OAuthError {
    OAuthError::invalid_request("dynamic client registration is not enabled").with_status(404)
}

fn validate(server: &AuthorizationServer, m: &Map<String, Value>) -> Result<Metadata, OAuthError> {
    let mut meta = validate_with(server.config(), server.scopes_supported(), m)?;
    machine_grant_policy(server, &mut meta)?;
    Ok(meta)
}

/// Whether `meta` registers `client_credentials`: tokens no user approves.
fn registers_machine_grant(meta: &Metadata) -> bool {
    meta.grant_types
        .iter()
        .any(|g| g == GrantType::CLIENT_CREDENTIALS.as_str())
}

/// `client_credentials` through registration: only with an initial access token (or the
/// explicit [`RegistrationConfig::open_client_credentials`]), and with a scope ceiling: the
/// registered `scope`, else the server's `default_scope`, else refused.
fn machine_grant_policy(
    server: &AuthorizationServer,
    meta: &mut Metadata,
) -> Result<(), OAuthError> {
    if !registers_machine_grant(meta) {
        return Ok(());
    }
    let cfg = &server.config().registration;
    if cfg.initial_access_token_sha256.is_none() && !cfg.open_client_credentials {
        return Err(metadata_error(
            "client_credentials cannot be registered without an initial access token",
        ));
    }
    if meta.scope.is_none() {
        meta.scope = Some(server.default_scope.clone().ok_or_else(|| {
            metadata_error(
                "`scope` is required with client_credentials: it is the client's ceiling",
            )
        })?);
    }
    Ok(())
}

/// Builds the client of `meta`. Returns it and the new plain secret, if one was made.
fn build_client(
    server: &AuthorizationServer,
    id: &str,
    meta: &Metadata,
    info: RegistrationInfo,
    secret: SecretChoice,
    expires_at: Option<i64>,
    registered_at: Option<i64>,
) -> Result<(Client, Option<String>), OAuthError> {
    let mut b = Client::builder(id.to_owned()).verified(false);
    let mut plain = None;
    if meta.auth_method != "none" {
        match secret {
            SecretChoice::Keep(d) => b = b.secret_digest(d),
            SecretChoice::New => {
                let s = server.new_value(TokenKind::Handle)?;
                b = b.secret(&s);
                plain = Some(s);
            }
        }
    }
    // A machine client's registered scope is its ceiling: nobody approves its tokens.
    let ceiling = server.config().registration.restrict_scope || registers_machine_grant(meta);
    b = meta.apply(b, ceiling);
    if let Some(t) = expires_at {
        b = b.expires_at(t);
    }
    if let Some(t) = registered_at {
        b = b.registered_at(t);
    }
    let client = b.registration(info).build().map_err(|e| {
        log::debug!("twisted-oauth2: registration refused: {e}");
        metadata_error("the client metadata is not acceptable")
    })?;
    Ok((client, plain))
}

enum SecretChoice {
    Keep(SecretDigest),
    New,
}

/// The client information response of `client`.
fn information(
    server: &AuthorizationServer,
    client: &Client,
    secret: Option<&str>,
    token: Option<&str>,
) -> ClientInformation {
    let mut m = Map::new();
    m.insert("client_id".into(), client.id().into());
    if let Some(t) = client.registered_at() {
        m.insert("client_id_issued_at".into(), t.into());
    }
    if let Some(s) = secret {
        m.insert("client_secret".into(), s.into());
    }
    if !client.is_public() {
        m.insert("client_secret_expires_at".into(), 0.into());
    }
    m.insert(
        "redirect_uris".into(),
        client
            .redirect_uris()
            .iter()
            .map(|u| Value::from(u.as_str()))
            .collect(),
    );
    m.insert(
        "grant_types".into(),
        client
            .grant_types()
            .iter()
            .map(|g| Value::from(g.as_str()))
            .collect(),
    );
    let code = client.allows_grant(GrantType::AUTHORIZATION_CODE.as_str());
    let response_types: Vec<Value> = if code { vec!["code".into()] } else { vec![] };
    m.insert("response_types".into(), response_types.into());
    let info = client.registration();
    let method = info
        .map(|i| i.token_endpoint_auth_method.clone())
        .unwrap_or_else(|| "none".into());
    m.insert("token_endpoint_auth_method".into(), method.into());
    if let Some(n) = client.explicit_name() {
        m.insert("client_name".into(), n.into());
    }
    if let Some(s) = info.and_then(|i| i.scope.clone()) {
        m.insert("scope".into(), s.into());
    }
    if let Some(t) = info.and_then(|i| i.application_type.clone()) {
        m.insert("application_type".into(), t.into());
    }
    if let Some(t) = token {
        m.insert("registration_access_token".into(), t.into());
    }
    m.insert(
        "registration_client_uri".into(),
        registration_client_uri(server, client.id()).into(),
    );
    ClientInformation { members: m }
}

/// `<base>/register/<client_id>`.
pub fn registration_client_uri(server: &AuthorizationServer, client_id: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let id: String = percent_encoding::utf8_percent_encode(client_id, SEGMENT).collect();
    format!("{}/{id}", server.endpoint_url("register"))
}

fn registry(
    server: &AuthorizationServer,
) -> Result<&std::sync::Arc<dyn crate::storage::ClientRegistry>, OAuthError> {
    server.client_registry().ok_or_else(|| {
        log::error!("twisted-oauth2: registration is enabled but the client store is read-only");
        OAuthError::with_description(
            ErrorCode::TemporarilyUnavailable,
            "client registration is unavailable",
        )
    })
}

/// `POST <base>/register` (RFC 7591 §3): registers a client. `Ok` is answered
/// `201 Created` with [`ClientInformation::to_json`].
pub async fn register(
    server: &AuthorizationServer,
    req: RegistrationRequest<'_>,
) -> Result<ClientInformation, OAuthError> {
    let cfg = &server.config().registration;
    if !cfg.enabled {
        return Err(disabled());
    }
    let limiter = server.extension_state(|s| {
        RegistrationLimiter(crate::rate_limit::RateLimiter::new(
            &s.config().registration,
        ))
    });
    if let Err(wait) = limiter.0.check(req.client_ip) {
        return Err(
            OAuthError::invalid_request("too many registration requests; retry later")
                .with_status(429)
                .with_header("Retry-After", wait.max(1).to_string()),
        );
    }
    if let Some(hex) = &cfg.initial_access_token_sha256 {
        // SHA-256 of the presented token compared with the configured digest in constant time.
        let ok = match (bearer(req.authorization), SecretDigest::from_hex(hex)) {
            (Some(t), Some(d)) => d.verify(t),
            _ => false,
        };
        if !ok {
            return Err(invalid_token(
                "registration needs a valid initial access token",
            ));
        }
    }
    let body = parse_body(server, &req)?;
    let meta = validate(server, &body)?;
    let registry = registry(server)?;
    let token = server.new_value(TokenKind::Handle)?;
    let info = RegistrationInfo {
        token_sha256: SecretDigest::of(&token).to_hex(),
        token_endpoint_auth_method: meta.auth_method.to_owned(),
        scope: meta.scope.as_ref().map(Scope::to_string),
        application_type: meta.application_type.map(str::to_owned),
    };
    let now = server.now();
    let expires_at = (cfg.unused_client_lifetime > 0)
        .then(|| now.saturating_add(cfg.unused_client_lifetime as i64));
    for _ in 0..3 {
        let id = server.new_value(TokenKind::Handle)?;
        let (client, secret) = build_client(
            server,
            &id,
            &meta,
            info.clone(),
            SecretChoice::New,
            expires_at,
            Some(now),
        )?;
        match registry.create_client(&client).await {
            Ok(()) => {
                log::info!(
                    "twisted-oauth2: registered client `{}` ({})",
                    client.id(),
                    meta.auth_method
                );
                if cfg.max_unused_clients > 0 && expires_at.is_some() {
                    // The oldest unused registrations make room; a failure here costs
                    // the cap, not this registration.
                    match registry
                        .trim_unused_clients(cfg.max_unused_clients, now)
                        .await
                    {
                        Ok(0) => {}
                        Ok(n) => log::info!(
                            "twisted-oauth2: deleted {n} unused registration(s) beyond \
                             registration.max_unused_clients"
                        ),
                        Err(e) => {
                            log::warn!("twisted-oauth2: could not trim unused registrations: {e}")
                        }
                    }
                }
                return Ok(information(
                    server,
                    &client,
                    secret.as_deref(),
                    Some(&token),
                ));
            }
            Err(StorageError::ClientExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::with_description(
        ErrorCode::TemporarilyUnavailable,
        "could not allocate a client_id",
    ))
}

/// The registered client `client_id` whose registration access token is presented, or
/// `401 invalid_token`.
async fn authorized_client(
    server: &AuthorizationServer,
    client_id: &str,
    req: &RegistrationRequest<'_>,
) -> Result<std::sync::Arc<Client>, OAuthError> {
    if !server.config().registration.enabled {
        return Err(disabled());
    }
    require_secure(server, req.transport)?;
    let Some(token) = bearer(req.authorization) else {
        return Err(OAuthError::no_token(""));
    };
    let refused = || invalid_token("the registration access token is invalid");
    if client_id.len() > 512 {
        return Err(refused());
    }
    // Failed token checks count against the client id's limit of failed client
    // authentications (per address, and its ceiling), as at the other endpoints; a client id
    // over it is refused before its token is checked.
    let limit = server.config().limits.client_auth_limit();
    if let Some(wait) = limit.refused(server, client_id, req.client_ip).await {
        return Err(crate::limits::too_many(
            ErrorCode::InvalidToken,
            "failed registration access token checks",
            wait,
        ));
    }
    let found = server.client(client_id).await?;
    let client = match found {
        Some(c)
            if c.registration()
                .is_some_and(|info| info.verify_token(token)) =>
        {
            c
        }
        other => {
            if other.is_none() {
                // Same work as a found client, so timing does not tell ids apart.
                let _ = SecretDigest::of(token);
            }
            limit.failed(server, client_id, req.client_ip).await;
            return Err(refused());
        }
    };
    Ok(client)
}

/// `GET <base>/register/<client_id>` (RFC 7592 §2.1): the client's current information
/// (without its secret or registration access token, which are kept only as digests).
pub async fn read(
    server: &AuthorizationServer,
    client_id: &str,
    req: RegistrationRequest<'_>,
) -> Result<ClientInformation, OAuthError> {
    let client = authorized_client(server, client_id, &req).await?;
    Ok(information(server, &client, None, None))
}

/// `PUT <base>/register/<client_id>` (RFC 7592 §2.2): replaces the client's metadata,
/// validated as at registration. A `client_id` member must equal the client's; the secret
/// is kept (a new one is issued when the client moves from `none` to a `client_secret_*`
/// method), as are the registration access token and the expiry.
pub async fn update(
    server: &AuthorizationServer,
    client_id: &str,
    req: RegistrationRequest<'_>,
) -> Result<ClientInformation, OAuthError> {
    let client = authorized_client(server, client_id, &req).await?;
    let body = parse_body(server, &req)?;
    if member(&body, "client_id").is_some_and(|v| v.as_str() != Some(client.id())) {
        return Err(OAuthError::invalid_request(
            "`client_id` does not match the registration",
        ));
    }
    let meta = validate(server, &body)?;
    if client.registration().is_none() {
        return Err(invalid_token("the registration access token is invalid"));
    }
    // The registration access token rotates (RFC 7592 §3): the presented one stops working
    // once the update is stored, so a leaked token is good for one update at most.
    let token = server.new_value(TokenKind::Handle)?;
    let info = RegistrationInfo {
        token_sha256: SecretDigest::of(&token).to_hex(),
        token_endpoint_auth_method: meta.auth_method.to_owned(),
        scope: meta.scope.as_ref().map(Scope::to_string),
        application_type: meta.application_type.map(str::to_owned),
    };
    let secret = match client.secret_digest() {
        Some(d) => SecretChoice::Keep(d.clone()),
        None => SecretChoice::New,
    };
    let (updated, plain) = build_client(
        server,
        client.id(),
        &meta,
        info,
        secret,
        client.expires_at(),
        client.registered_at(),
    )?;
    if !registry(server)?.update_client(&updated).await? {
        return Err(invalid_token("the registration access token is invalid"));
    }
    Ok(information(
        server,
        &updated,
        plain.as_deref(),
        Some(&token),
    ))
}

/// `DELETE <base>/register/<client_id>` (RFC 7592 §2.3): deletes the registration, after
/// revoking every access and refresh token issued to the client (through
/// [`AuthorizationServer::client_registry`], see
/// [`ClientRegistry`](crate::storage::ClientRegistry)); if the revocation fails, nothing is
/// deleted and the store's error is the answer. `Ok(())` is answered `204 No Content`.
pub async fn delete(
    server: &AuthorizationServer,
    client_id: &str,
    req: RegistrationRequest<'_>,
) -> Result<(), OAuthError> {
    let client = authorized_client(server, client_id, &req).await?;
    registry(server)?.delete_client(client.id()).await?;
    log::info!(
        "twisted-oauth2: deleted registered client `{}`",
        client.id()
    );
    Ok(())
}

/// The per-address limits of `POST /register`, kept as the server's extension state
/// ([`AuthorizationServer::extension_state`]).
struct RegistrationLimiter(crate::rate_limit::RateLimiter);

/// Ends a registered client's unused-registration expiry at its first token: the
/// [`TokenIssued`](crate::endpoint::token::TokenIssued) hook every server runs.
struct MarkUsed;

#[async_trait::async_trait]
impl crate::endpoint::token::TokenIssued for MarkUsed {
    async fn issued(&self, server: &AuthorizationServer, client: &Client, _grant_type: &str) {
        mark_used(server, client).await;
    }
}

/// The hook of [`MarkUsed`].
pub(crate) fn issued_hook() -> std::sync::Arc<dyn crate::endpoint::token::TokenIssued> {
    std::sync::Arc::new(MarkUsed)
}

/// After a token was issued to `client`: a registered client's unused-registration expiry
/// ends (it has been used).
async fn mark_used(server: &AuthorizationServer, client: &Client) {
    if client.registration().is_none() || client.expires_at().is_none() {
        return;
    }
    let Some(registry) = server.client_registry() else {
        return;
    };
    let used = client.clone().with_expires_at(None);
    if let Err(e) = registry.update_client(&used).await {
        log::warn!(
            "twisted-oauth2: could not record the first use of client `{}`: {e}",
            client.id()
        );
    }
}
