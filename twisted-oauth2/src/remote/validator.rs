//! [`RemoteValidator`]: a [`TokenValidator`] trusting an external authorization server.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::introspection::{Introspected, Introspector};
use super::{discover, RemoteError, RemoteJwks};
use crate::audit::{AuditEvent, AuditSink};
use crate::clock::{Clock, SystemClock};
use crate::config::{ResourceServerConfig, ServerConfig};
use crate::endpoint::resource::{BearerRequest, TokenInfo};
use crate::error::{Challenge, ConfigError, ErrorCode, OAuthError};
use crate::format::{Rejection, ValidToken};
use crate::jwt::{Expectations, VerifiedJwt};
use crate::outbound::{Outbound, Policy};
use crate::scope::Scope;
use crate::storage::{GrantId, TokenRecord};
use crate::validation::{ProtectedResource, RequestPolicy, TokenValidator};

/// After a failed discovery of the issuer's metadata, seconds until it is asked again.
pub const RETRY_DISCOVERY: u64 = 5;
/// After discovery found the issuer misconfigured (another `issuer`, no `jwks_uri`),
/// seconds until it is asked again.
pub const RETRY_MISCONFIGURED: u64 = 30;
/// The largest metadata, JWKS or introspection answer read, bytes.
const MAX_ANSWER: usize = 256 * 1024;
/// The longest exchange with the issuer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The issuer's endpoints once known (configured, or discovered).
struct Endpoints {
    /// `Some` once known.
    ready: Option<Ready>,
    /// Unix seconds before which discovery is not tried again.
    retry_at: i64,
    /// Why the last discovery failed.
    failure: Option<RemoteError>,
}

#[derive(Clone)]
struct Ready {
    jwks: Option<RemoteJwks>,
    introspector: Option<Arc<Introspector>>,
}

struct IntrospectionSettings {
    client_id: String,
    client_secret: String,
    endpoint: Option<url::Url>,
    ttl: u64,
    max_cached: usize,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: i64,
    require_typ: bool,
    allow_http: bool,
    outbound: Outbound,
    policy: Policy,
    clock: Arc<dyn Clock>,
    jwks_uri: Option<url::Url>,
    introspection: Option<IntrospectionSettings>,
    endpoints: ArcSwap<Endpoints>,
    discovering: tokio::sync::Mutex<()>,
    request_policy: RequestPolicy,
    resource: ProtectedResource,
    audit: Option<Arc<dyn AuditSink>>,
}

/// A [`TokenValidator`] for a resource server whose tokens come from an external
/// authorization server (Keycloak, Auth0, Microsoft Entra ID, node-oidc-provider, another
/// twisted-oauth2): what the fairing's resource-server-only mode
/// (`[oauth2.resource_server]`, [`OAuth2::resource_server`](crate::rocket::OAuth2::resource_server))
/// protects routes with. Cheap to clone (shared).
///
/// - A token of three dot-separated parts is a JWT: verified against the issuer's
///   [`RemoteJwks`] ([`crate::jwt::verify_access_token`]: the key's algorithm among the
///   allowed ones, exact `iss`, one of the audiences in `aud`, `exp`/`nbf` with the
///   leeway, `typ: at+jwt` unless turned off).
/// - Any other token is opaque: asked at the issuer's RFC 7662 introspection endpoint with
///   client credentials (`client_secret_basic`), through a short cache
///   ([`Introspector`]); the answer must be `active`, and its `iss` (when present), `aud`
///   and `exp` are checked as a JWT's.
///
/// Scopes come from `scope` (space-separated) or `scp` (a list, as Entra ID sends them);
/// the client from `client_id`, else `azp`. A refused token is `401 invalid_token` (the
/// reason goes to the debug log and, with [`RemoteValidatorBuilder::audit`], an
/// [`AuditEvent::TokenRejected`]); when the issuer cannot be used (down, an error status, a
/// timeout, an unreadable answer) the request is answered `503 temporarily_unavailable`
/// with `Retry-After`, and the first request after that delay asks again.
///
/// The issuer's metadata (RFC 8414, else OpenID Connect discovery) is read on first need
/// (or at launch, [`RemoteValidator::prepare`]) unless both the JWKS URI and the
/// introspection endpoint are configured. With its keys cached, a JWT validation does no
/// I/O and takes no lock.
#[derive(Clone)]
pub struct RemoteValidator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteValidator")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RemoteValidator`]: [`RemoteValidator::builder`], or
/// [`RemoteValidator::from_config`].
pub struct RemoteValidatorBuilder {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    require_typ: bool,
    allow_http: bool,
    jwks_uri: Option<url::Url>,
    introspection: Option<IntrospectionSettings>,
    clock: Option<Arc<dyn Clock>>,
    outbound: Option<Outbound>,
    request_policy: RequestPolicy,
    resource: Option<String>,
    resource_name: Option<String>,
    audit: Option<Arc<dyn AuditSink>>,
}

impl std::fmt::Debug for RemoteValidatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteValidatorBuilder")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "EdDSA" => Algorithm::EdDSA,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        _ => return None,
    })
}

fn parse_url(key: &'static str, s: &str) -> Result<url::Url, ConfigError> {
    url::Url::parse(s).map_err(|e| ConfigError::Setting {
        key,
        reason: format!("`{}` is not a URL: {e}", crate::error::printable(s)),
    })
}

impl RemoteValidator {
    /// A validator of tokens from `issuer` (exactly as its metadata names it) for one of
    /// `audiences`: algorithms RS256, ES256 and EdDSA, 60 s leeway, `typ: at+jwt` required,
    /// HTTPS only, JWTs only until [`RemoteValidatorBuilder::introspection`].
    pub fn builder<S: Into<String>>(
        issuer: impl Into<String>,
        audiences: impl IntoIterator<Item = S>,
    ) -> RemoteValidatorBuilder {
        RemoteValidatorBuilder {
            issuer: issuer.into(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            leeway: 60,
            require_typ: true,
            allow_http: false,
            jwks_uri: None,
            introspection: None,
            clock: None,
            outbound: None,
            request_policy: RequestPolicy::default(),
            resource: None,
            resource_name: None,
            audit: None,
        }
    }

    /// The builder for an `[oauth2.resource_server]` table (checked first:
    /// [`ResourceServerConfig::validate`]), with the request settings of the `oauth2`
    /// table `server` (query tokens, proxy headers, `resource_name`).
    pub fn from_config(
        rs: &ResourceServerConfig,
        server: &ServerConfig,
    ) -> Result<RemoteValidatorBuilder, ConfigError> {
        rs.validate()?;
        let mut b = RemoteValidator::builder(rs.issuer.clone(), rs.audience.iter().cloned())
            .algorithms(rs.algorithms.iter().filter_map(|a| algorithm(a)))
            .leeway(rs.leeway)
            .require_typ(rs.require_typ)
            .allow_http(rs.allow_http)
            .request_policy(RequestPolicy::of(server))
            .resource(rs.resource_identifier());
        b.resource_name = server.resource_name.clone();
        if let Some(u) = &rs.jwks_uri {
            b = b.jwks_uri(parse_url("resource_server.jwks_uri", u)?);
        }
        if let Some(i) = &rs.introspection {
            b = b
                .introspection(i.client_id.clone(), i.client_secret.clone())
                .introspection_cache(i.cache_ttl, i.max_cached);
            if let Some(e) = &i.endpoint {
                b = b.introspection_endpoint(parse_url(
                    "resource_server.introspection.endpoint",
                    e,
                )?);
            }
        }
        Ok(b)
    }

    /// Reads the issuer's metadata now, if it is needed and not read yet (the fairing
    /// calls it at launch). [`RemoteError::Unavailable`]: the issuer cannot be reached
    /// (routes answer 503 until it can); [`RemoteError::Misconfigured`]: its metadata
    /// contradicts the configuration.
    pub async fn prepare(&self) -> Result<(), RemoteError> {
        self.ready().await.map(|_| ())
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Lines describing the validator for a launch banner.
    pub fn describe(&self) -> Vec<String> {
        let i = &self.inner;
        let state = i.endpoints.load();
        let jwks = match (
            &i.jwks_uri,
            state.ready.as_ref().and_then(|r| r.jwks.as_ref()),
        ) {
            (Some(u), _) => u.to_string(),
            (None, Some(j)) => format!("{} (discovered)", j.uri()),
            (None, None) => "from the issuer's metadata (not read yet)".to_owned(),
        };
        let intro = match (&i.introspection, state.ready.as_ref()) {
            (None, _) => "off (opaque tokens refused)".to_owned(),
            (
                Some(s),
                Some(Ready {
                    introspector: Some(x),
                    ..
                }),
            ) => format!(
                "POST {} as `{}` (cache {} s)",
                x.endpoint(),
                s.client_id,
                s.ttl
            ),
            (Some(s), _) => format!(
                "as `{}` at the issuer's introspection_endpoint (not read yet; cache {} s)",
                s.client_id, s.ttl
            ),
        };
        vec![
            format!("  issuer:     {} (external)", i.issuer),
            format!("  audience:   {}", i.audiences.join(", ")),
            format!(
                "  algorithms: {}",
                i.algorithms
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("  jwks:       {jwks}"),
            format!("  introspect: {intro}"),
            format!(
                "  typ:        {}",
                if i.require_typ {
                    "at+jwt required"
                } else {
                    "not checked"
                }
            ),
        ]
    }

    /// Whether plain HTTP is allowed (development only).
    pub fn allows_http(&self) -> bool {
        self.inner.allow_http
    }

    /// The issuer's endpoints if discovered, or the outage answer while its retry delay
    /// runs; `None` when it is time to discover.
    fn settled(&self) -> Option<Result<Ready, RemoteError>> {
        let state = self.inner.endpoints.load_full();
        if let Some(r) = &state.ready {
            return Some(Ok(r.clone()));
        }
        let now = self.inner.clock.unix();
        (state.retry_at > now).then(|| Err(waiting(&state, now)))
    }

    /// The issuer's endpoints, discovered first if needed.
    async fn ready(&self) -> Result<Ready, RemoteError> {
        let i = &self.inner;
        if let Some(settled) = self.settled() {
            return settled;
        }
        // One discovery at a time; whoever waited sees its outcome.
        let _one = i.discovering.lock().await;
        if let Some(settled) = self.settled() {
            return settled;
        }
        let now = i.clock.unix();
        match self.discover().await {
            Ok(r) => {
                i.endpoints.store(Arc::new(Endpoints {
                    ready: Some(r.clone()),
                    retry_at: i64::MIN,
                    failure: None,
                }));
                Ok(r)
            }
            Err(e) => {
                let (e, wait) = match e {
                    RemoteError::Unavailable { reason, .. } => (
                        RemoteError::Unavailable {
                            reason,
                            retry_after: RETRY_DISCOVERY,
                        },
                        RETRY_DISCOVERY,
                    ),
                    other => (other, RETRY_MISCONFIGURED),
                };
                log::warn!("twisted-oauth2: the issuer {}: {e}", i.issuer);
                i.endpoints.store(Arc::new(Endpoints {
                    ready: None,
                    retry_at: now.saturating_add(wait as i64),
                    failure: Some(e.clone()),
                }));
                Err(e)
            }
        }
    }

    async fn discover(&self) -> Result<Ready, RemoteError> {
        let i = &self.inner;
        let meta = discover(&i.outbound, &i.issuer, &i.policy).await?;
        let jwks_uri = match (&i.jwks_uri, meta.jwks_uri) {
            (Some(u), _) => u.clone(),
            (None, Some(u)) => u,
            (None, None) => {
                return Err(RemoteError::Misconfigured(format!(
                    "the issuer {} publishes no jwks_uri: set resource_server.jwks_uri",
                    i.issuer
                )))
            }
        };
        let introspector = match &i.introspection {
            None => None,
            Some(s) => match (&s.endpoint, meta.introspection_endpoint) {
                (Some(u), _) => Some(self.introspector(s, u.clone())),
                (None, Some(u)) => Some(self.introspector(s, u)),
                (None, None) => {
                    return Err(RemoteError::Misconfigured(format!(
                        "the issuer {} publishes no introspection_endpoint: set \
                         resource_server.introspection.endpoint",
                        i.issuer
                    )))
                }
            },
        };
        Ok(Ready {
            jwks: Some(self.jwks(jwks_uri)),
            introspector,
        })
    }

    fn jwks(&self, uri: url::Url) -> RemoteJwks {
        let i = &self.inner;
        RemoteJwks::new(i.outbound.clone(), uri, i.policy.clone(), i.clock.clone())
    }

    fn introspector(&self, s: &IntrospectionSettings, endpoint: url::Url) -> Arc<Introspector> {
        let i = &self.inner;
        Arc::new(Introspector::new(
            i.outbound.clone(),
            i.policy.clone(),
            endpoint,
            (s.client_id.clone(), s.client_secret.clone()),
            i.clock.clone(),
            s.ttl,
            s.max_cached,
        ))
    }

    fn refuse(&self, reason: Rejection, client: Option<Arc<str>>) -> OAuthError {
        log::debug!(
            "twisted-oauth2: refused an access token of the issuer {}: {reason}{}",
            self.inner.issuer,
            client
                .as_ref()
                .map(|c| format!(" (client `{}`)", crate::error::printable(c)))
                .unwrap_or_default()
        );
        if let Some(a) = &self.inner.audit {
            a.record(&AuditEvent::TokenRejected {
                reason,
                client_id: client,
            });
        }
        let description = if reason == Rejection::WrongAudience {
            "the access token is for another resource"
        } else {
            "the access token is invalid, expired or revoked"
        };
        OAuthError::with_description(ErrorCode::InvalidToken, description)
            .with_challenge(Challenge::Bearer { scope: None })
    }

    /// Checks an active introspection answer as a JWT's claims would be.
    fn judge(&self, claims: &Map<String, Value>, now: i64) -> Result<(), Rejection> {
        let i = &self.inner;
        if claims
            .get("iss")
            .is_some_and(|v| v.as_str() != Some(i.issuer.as_str()))
        {
            return Err(Rejection::WrongAudience);
        }
        let aud = strings(claims.get("aud"));
        if !aud.iter().any(|a| i.audiences.iter().any(|x| x == a)) {
            return Err(Rejection::WrongAudience);
        }
        let number = |k: &str| claims.get(k).and_then(Value::as_i64);
        if number("exp").is_some_and(|exp| exp.saturating_add(i.leeway) <= now) {
            return Err(Rejection::Expired);
        }
        if number("nbf").is_some_and(|nbf| nbf.saturating_sub(i.leeway) > now) {
            return Err(Rejection::Expired);
        }
        if claims
            .get("token_type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token"))
        {
            return Err(Rejection::WrongType);
        }
        Ok(())
    }
}

/// The Unavailable answer while discovery waits for its retry time.
fn waiting(state: &Endpoints, now: i64) -> RemoteError {
    let reason = state
        .failure
        .as_ref()
        .map_or_else(|| "the issuer's metadata".to_owned(), ToString::to_string);
    RemoteError::unavailable(
        reason,
        Some(u64::try_from(state.retry_at - now).unwrap_or(1)),
    )
}

/// A claim that is a string or a list of strings, as a list.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The granted scope: `scope` (space-separated) or `scp` (a string or a list). Tokens that
/// are not RFC 6749 §3.3 scope tokens are left out.
fn scope_of(claims: &Map<String, Value>) -> Scope {
    let present = |k: &str| claims.get(k).filter(|v| !v.is_null());
    let raw: Vec<&str> = match present("scope").or_else(|| present("scp")) {
        Some(Value::String(s)) => s.split(' ').filter(|t| !t.is_empty()).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    Scope::from_tokens(raw.into_iter().filter(|t| crate::scope::is_valid_scope(t)))
        .unwrap_or_else(|_| Scope::empty())
}

/// The [`TokenInfo`] of a token with these claims.
fn info_of(
    claims: Map<String, Value>,
    sub: Option<String>,
    client_id: Option<String>,
    aud: Vec<String>,
    exp: i64,
    iat: Option<i64>,
    jti: Option<String>,
) -> TokenInfo {
    let scope = scope_of(&claims);
    let mut record = TokenRecord::new(
        client_id.unwrap_or_default(),
        scope,
        GrantId::from_u128(0),
        iat.unwrap_or(0),
        exp,
    )
    .with_audience(aud.into_iter().map(Arc::from).collect());
    if let Some(s) = sub {
        record = record.with_subject(s);
    }
    let mut valid = ValidToken::new(record).with_claims(claims);
    if let Some(j) = jti {
        valid = valid.with_jti(j);
    }
    TokenInfo::from_valid(valid)
}

fn of_jwt(jwt: VerifiedJwt) -> TokenInfo {
    info_of(
        jwt.claims,
        jwt.sub,
        jwt.client_id,
        jwt.aud,
        jwt.exp,
        jwt.iat,
        jwt.jti,
    )
}

fn of_introspection(claims: &Map<String, Value>, now: i64) -> TokenInfo {
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    let number = |k: &str| claims.get(k).and_then(Value::as_i64);
    info_of(
        claims.clone(),
        text("sub"),
        text("client_id").or_else(|| text("azp")),
        strings(claims.get("aud"))
            .into_iter()
            .map(str::to_owned)
            .collect(),
        number("exp").unwrap_or(now),
        number("iat"),
        text("jti"),
    )
}

/// `503 temporarily_unavailable` with `Retry-After` (the cause is logged, never sent).
fn unavailable(issuer: &str, e: &RemoteError) -> OAuthError {
    let retry = match e {
        RemoteError::Unavailable { retry_after, .. } => *retry_after,
        _ => RETRY_MISCONFIGURED,
    };
    log::warn!("twisted-oauth2: cannot validate a token of the issuer {issuer}: {e}");
    OAuthError::with_description(
        ErrorCode::TemporarilyUnavailable,
        "the authorization server is temporarily unavailable",
    )
    .with_header("Retry-After", retry.to_string())
}

#[async_trait]
impl TokenValidator for RemoteValidator {
    async fn authenticate(&self, req: &BearerRequest<'_>) -> Result<TokenInfo, OAuthError> {
        let i = &self.inner;
        if !req.request.transport.secure && !i.allow_http {
            return Err(OAuthError::invalid_request(
                "OAuth 2.0 requires requests over HTTPS",
            ));
        }
        let token = crate::endpoint::resource::extract_with(
            i.request_policy.allow_access_token_in_query,
            req,
            "",
        )?;
        let ready = self.ready().await.map_err(|e| unavailable(&i.issuer, &e))?;
        let now = i.clock.unix();
        if token.split('.').count() == 3 {
            let Some(jwks) = &ready.jwks else {
                return Err(self.refuse(Rejection::Unknown, None));
            };
            let audiences: Vec<&str> = i.audiences.iter().map(String::as_str).collect();
            let expect = Expectations::new(&i.issuer, now)
                .with_audiences(&audiences)
                .with_algorithms(&i.algorithms)
                .with_leeway(i.leeway)
                .with_require_typ(i.require_typ);
            return match jwks.verify(token, &expect).await {
                Err(e) => Err(unavailable(&i.issuer, &e)),
                Ok(Err(reason)) => {
                    log::debug!("twisted-oauth2: JWT refused: {reason}");
                    Err(self.refuse(reason.into(), None))
                }
                Ok(Ok(jwt)) => Ok(of_jwt(jwt)),
            };
        }
        let Some(introspector) = &ready.introspector else {
            log::debug!(
                "twisted-oauth2: an opaque access token, and resource_server.introspection is \
                 not configured"
            );
            return Err(self.refuse(Rejection::Unknown, None));
        };
        match introspector.introspect(token).await {
            Err(e) => Err(unavailable(&i.issuer, &e)),
            Ok(Introspected::Inactive) => Err(self.refuse(Rejection::Unknown, None)),
            Ok(Introspected::Active(claims)) => {
                let client = claims
                    .get("client_id")
                    .and_then(Value::as_str)
                    .map(Arc::from);
                match self.judge(&claims, now) {
                    Ok(()) => Ok(of_introspection(&claims, now)),
                    Err(reason) => Err(self.refuse(reason, client)),
                }
            }
        }
    }

    fn request_policy(&self) -> &RequestPolicy {
        &self.inner.request_policy
    }

    fn protected_resource(&self) -> Option<ProtectedResource> {
        Some(self.inner.resource.clone())
    }
}

impl RemoteValidatorBuilder {
    /// The accepted JWS algorithms (default RS256, ES256, EdDSA).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock skew allowed on `exp` and `nbf`, seconds (default 60).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// Whether a JWT must say `typ: at+jwt` (default `true`; Keycloak and Entra ID tokens
    /// say `JWT`).
    pub fn require_typ(mut self, require: bool) -> Self {
        self.require_typ = require;
        self
    }

    /// Development only: plain `http` to the issuer, and tokens accepted over plain HTTP.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The issuer's keys are at `uri` (instead of its metadata's `jwks_uri`).
    pub fn jwks_uri(mut self, uri: url::Url) -> Self {
        self.jwks_uri = Some(uri);
        self
    }

    /// Accepts opaque tokens through RFC 7662 introspection, authenticating as
    /// `client_id` with `client_secret` (`client_secret_basic`). Cache: 30 s, 10000
    /// answers ([`Self::introspection_cache`]).
    pub fn introspection(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.introspection = Some(IntrospectionSettings {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            endpoint: None,
            ttl: 30,
            max_cached: 10_000,
        });
        self
    }

    /// The introspection endpoint (instead of the metadata's); needs
    /// [`Self::introspection`] first.
    pub fn introspection_endpoint(mut self, endpoint: url::Url) -> Self {
        if let Some(s) = &mut self.introspection {
            s.endpoint = Some(endpoint);
        }
        self
    }

    /// How long an active introspection answer is reused (seconds, `0`: never) and how
    /// many are kept; needs [`Self::introspection`] first.
    pub fn introspection_cache(mut self, ttl: u64, max_cached: usize) -> Self {
        if let Some(s) = &mut self.introspection {
            s.ttl = ttl;
            s.max_cached = max_cached.max(1);
        }
        self
    }

    /// Uses this clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses this outbound client (to share one with other uses).
    pub fn outbound(mut self, outbound: Outbound) -> Self {
        self.outbound = Some(outbound);
        self
    }

    /// How protected requests are read (query tokens, proxy headers).
    pub fn request_policy(mut self, policy: RequestPolicy) -> Self {
        self.request_policy = policy;
        self
    }

    /// The RFC 9728 resource identifier (default: the first audience).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Records refused tokens as [`AuditEvent::TokenRejected`] in `sink`.
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The validator; `Err` for an issuer that is no URL, no audience or algorithm, or an
    /// outbound client that cannot be built.
    pub fn build(self) -> Result<RemoteValidator, ConfigError> {
        let err = |key, reason: String| ConfigError::Setting { key, reason };
        url::Url::parse(&self.issuer).map_err(|e| {
            err(
                "resource_server.issuer",
                format!("`{}`: {e}", crate::error::printable(&self.issuer)),
            )
        })?;
        if self.audiences.is_empty() {
            return Err(err("resource_server.audience", "is required".into()));
        }
        if self.algorithms.is_empty() {
            return Err(err("resource_server.algorithms", "is empty".into()));
        }
        let outbound = match self.outbound {
            Some(o) => o,
            None => Outbound::new(&[], false).map_err(|e| err("resource_server", e.to_string()))?,
        };
        let policy = Policy::configured(MAX_ANSWER, TIMEOUT).with_require_https(!self.allow_http);
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let resource = self.resource.unwrap_or_else(|| self.audiences[0].clone());
        let mut resource = ProtectedResource::new(resource, vec![self.issuer.clone()]);
        resource.resource_name = self.resource_name;
        let needs_discovery = self.jwks_uri.is_none()
            || self
                .introspection
                .as_ref()
                .is_some_and(|s| s.endpoint.is_none());
        let v = RemoteValidator {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audiences: self.audiences,
                algorithms: self.algorithms,
                leeway: i64::try_from(self.leeway).unwrap_or(3600),
                require_typ: self.require_typ,
                allow_http: self.allow_http,
                outbound,
                policy,
                clock,
                jwks_uri: self.jwks_uri,
                introspection: self.introspection,
                endpoints: ArcSwap::from_pointee(Endpoints {
                    ready: None,
                    retry_at: i64::MIN,
                    failure: None,
                }),
                discovering: tokio::sync::Mutex::new(()),
                request_policy: self.request_policy,
                resource,
                audit: self.audit,
            }),
        };
        if !needs_discovery {
            let i = &v.inner;
            let ready = Ready {
                jwks: i.jwks_uri.clone().map(|u| v.jwks(u)),
                introspector: i
                    .introspection
                    .as_ref()
                    .and_then(|s| s.endpoint.clone().map(|e| v.introspector(s, e))),
            };
            i.endpoints.store(Arc::new(Endpoints {
                ready: Some(ready),
                retry_at: i64::MIN,
                failure: None,
            }));
        }
        Ok(v)
    }
}
