//! Access-token formats: how an access token's value is made at issuance and turned back
//! into its record at validation, introspection and revocation.
//!
//! # The issuance pipeline
//!
//! The one issuance path ([`crate::grant`]) builds the token's [`TokenRecord`], picks the
//! format *of the client* (its `access_token_format`, else the server-wide
//! `access_token_format`, from the [`FormatRegistry`]), and calls
//! [`issue`](AccessTokenFormat::issue) with a [`FormatContext`] that carries the client, the
//! issuer, a view of the configuration and the [`FormatKeys`] slot. The format answers an
//! [`IssuedToken`]: the value, its `token_type`, its lifetime and its `jti` (a
//! self-contained format names each token; an opaque one need not). Every
//! [`AfterIssue`](crate::grant::AfterIssue) hook then sees the issued value (OpenID Connect
//! computes `at_hash` from it).
//!
//! # The validation pipeline
//!
//! Protected resources, introspection and revocation call
//! [`validate`](AccessTokenFormat::validate) with a [`ValidationContext`] (the request, the
//! resource the token must be for, the clock leeway, the time). The format answers a
//! [`Validation`]: the [`ValidToken`] (record, claims, `jti`), or a [`Rejection`] saying why
//! not (bad signature, wrong `typ`, expired, wrong audience, revoked, unknown). The reason
//! reaches the audit events ([`AuditEvent::TokenRejected`](crate::audit::AuditEvent)) and
//! the debug log; the client only ever gets RFC 6750 `invalid_token`. After the format, the
//! core checks expiry and audience on the record itself, so a format need not.
//!
//! With several formats registered, validation asks the server-wide default first, then
//! the others in registration order, and stops at the first answer that is not
//! [`Rejection::Unknown`]: a self-contained format answers `Unknown` for a value that is not
//! its shape, cheaply, without I/O.
//!
//! The default, [`OpaqueTokens`] (registered as `opaque`), makes random values and keeps
//! their SHA-256 digests in the [`AccessTokenStore`]. A self-contained format (a signed JWT,
//! RFC 9068) makes a value that carries its record and keeps its revocations in the store
//! (grant tombstones, read back with [`AccessTokenStore::access_grant_tombstone`]). Refresh
//! tokens and codes stay opaque.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::client::Client;
use crate::config::ServerConfig;
use crate::error::StorageError;
use crate::request::RequestContext;
use crate::storage::{AccessTokenStore, GrantId, TokenRecord};
use crate::token::{is_b64token, TokenDigest, TokenGenerator, TokenKind, TokenType};

/// The name of the built-in [`OpaqueTokens`] format.
pub const OPAQUE: &str = "opaque";

/// The keys formats sign and verify with: a slot the application fills with
/// [`ServerBuilder::format_keys`](crate::server::ServerBuilder::format_keys) (a key set, a
/// client of a key store) and a format reads back by its own type with [`Self::get`]. The
/// type is the format's: the server neither reads nor logs it.
#[derive(Clone)]
pub struct FormatKeys(Arc<dyn Any + Send + Sync>);

impl FormatKeys {
    /// A slot holding `keys`.
    pub fn new<T: Any + Send + Sync>(keys: T) -> Self {
        FormatKeys(Arc::new(keys))
    }

    /// The keys, if they are a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for FormatKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormatKeys(..)")
    }
}

/// What a format may use: the access-token store, the token generator, the time, and (at
/// issuance through the server) the client, the issuer, the configuration and the keys.
#[derive(Clone, Copy)]
pub struct FormatContext<'a> {
    pub(crate) store: &'a dyn AccessTokenStore,
    pub(crate) generator: &'a dyn TokenGenerator,
    pub(crate) now: i64,
    pub(crate) client: Option<&'a Client>,
    pub(crate) issuer: &'a str,
    pub(crate) config: Option<&'a ServerConfig>,
    pub(crate) keys: Option<&'a FormatKeys>,
}

impl std::fmt::Debug for FormatContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormatContext")
            .field("now", &self.now)
            .field("issuer", &self.issuer)
            .field("client", &self.client.map(Client::id))
            .finish_non_exhaustive()
    }
}

impl<'a> FormatContext<'a> {
    /// A context over these parts (for formats that wrap another, and for tests): no
    /// client, an empty issuer, no configuration, no keys (see the `with_` setters).
    pub fn new(
        store: &'a dyn AccessTokenStore,
        generator: &'a dyn TokenGenerator,
        now: i64,
    ) -> Self {
        FormatContext {
            store,
            generator,
            now,
            client: None,
            issuer: "",
            config: None,
            keys: None,
        }
    }

    /// Sets the client the token is (or was) issued to.
    pub fn with_client(mut self, client: &'a Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Sets the issuer identifier.
    pub fn with_issuer(mut self, issuer: &'a str) -> Self {
        self.issuer = issuer;
        self
    }

    /// Sets the configuration view.
    pub fn with_config(mut self, config: &'a ServerConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Sets the keys slot.
    pub fn with_keys(mut self, keys: Option<&'a FormatKeys>) -> Self {
        self.keys = keys;
        self
    }

    /// The access-token store.
    pub fn store(&self) -> &'a dyn AccessTokenStore {
        self.store
    }

    /// The current time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The client the token is issued to: always set at issuance through the server; `None`
    /// at validation and revocation (the token names its client) and in bare contexts.
    pub fn client(&self) -> Option<&'a Client> {
        self.client
    }

    /// The issuer identifier, without trailing slash (`iss` of a self-contained token);
    /// empty in a bare context.
    pub fn issuer(&self) -> &'a str {
        self.issuer
    }

    /// The configuration (read-only), when the server made the context.
    pub fn config(&self) -> Option<&'a ServerConfig> {
        self.config
    }

    /// The keys slot, when the application filled it.
    pub fn keys(&self) -> Option<&'a FormatKeys> {
        self.keys
    }

    /// A fresh random value from the server's generator, checked against RFC 6750
    /// `b64token`.
    pub fn random_value(&self) -> Result<String, StorageError> {
        let v = self.generator.generate(TokenKind::Access)?;
        if is_b64token(&v) {
            Ok(v)
        } else {
            Err(StorageError::other(BadGeneratedValue))
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the token generator returned a value outside RFC 6750 b64token")]
struct BadGeneratedValue;

/// What [`AccessTokenFormat::issue`] made: the value the client gets, how it is presented,
/// how long it lives and its identifier. Built with [`IssuedToken::bearer`] and setters.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The access token's value (RFC 6750 `b64token`).
    pub value: String,
    /// How it is presented (`token_type` of the token response).
    pub token_type: TokenType,
    /// Seconds it lives from issuance (`expires_in` of the token response).
    pub expires_in: i64,
    /// Its unique identifier (RFC 9068 `jti`), when the format names its tokens.
    pub jti: Option<String>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the value.
        f.debug_struct("IssuedToken")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("jti", &self.jti)
            .finish_non_exhaustive()
    }
}

impl IssuedToken {
    /// A `Bearer` token with this value, living `expires_in` seconds, without `jti`.
    pub fn bearer(value: String, expires_in: i64) -> Self {
        IssuedToken {
            value,
            token_type: TokenType::Bearer,
            expires_in,
            jti: None,
        }
    }

    /// A `Bearer` token with this value living as long as `record` says.
    pub fn for_record(value: String, record: &TokenRecord) -> Self {
        Self::bearer(value, record.expires_at.saturating_sub(record.issued_at))
    }

    /// Sets the `jti`.
    pub fn with_jti(mut self, jti: impl Into<String>) -> Self {
        self.jti = Some(jti.into());
        self
    }

    /// Sets the `token_type`.
    pub fn with_token_type(mut self, token_type: TokenType) -> Self {
        self.token_type = token_type;
        self
    }
}

/// The facts a validation may use: the request, the resource the token must be for, the
/// clock leeway and the time. Built by the server; [`ValidationContext::new`] for tests and
/// formats that wrap another.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ValidationContext<'a> {
    /// The HTTP request that presented the token, when a protected route validates it
    /// (`None` at introspection and revocation, where another party presents it).
    pub request: Option<&'a RequestContext<'a>>,
    /// The resource (RFC 8707 audience) the token must be for: the route's own resource,
    /// or `None` for the application's default audience; the core checks it on the record
    /// after the format (a format may check it earlier, e.g. on a JWT's `aud`).
    pub audience: Option<&'a str>,
    /// The default audience of this server (RFC 8707), when known.
    pub default_audience: Option<&'a str>,
    /// Seconds of clock skew to tolerate on `exp`/`nbf`/`iat` of a self-contained token.
    pub leeway: i64,
    /// The current time, Unix seconds.
    pub now: i64,
    /// Whether expiry and audience are to be judged (protected routes, introspection) or
    /// not (revocation, which finds the record of a token whatever its state).
    pub judge: bool,
}

impl<'a> ValidationContext<'a> {
    /// A context at `now` with no request, the default audience, no leeway, judging.
    pub fn new(now: i64) -> Self {
        ValidationContext {
            request: None,
            audience: None,
            default_audience: None,
            leeway: 0,
            now,
            judge: true,
        }
    }

    /// Sets the request.
    pub fn with_request(mut self, request: &'a RequestContext<'a>) -> Self {
        self.request = Some(request);
        self
    }

    /// Sets the required audience.
    pub fn with_audience(mut self, audience: Option<&'a str>) -> Self {
        self.audience = audience;
        self
    }

    /// Sets the leeway, seconds.
    pub fn with_leeway(mut self, leeway: i64) -> Self {
        self.leeway = leeway;
        self
    }
}

/// A validated token: its record, the claims of a self-contained token, its `jti`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ValidToken {
    /// What the token stands for.
    pub record: TokenRecord,
    /// The claims of a self-contained token as it carried them (RFC 9068 `iss`, `aud`,
    /// private claims...); `None` for an opaque token.
    pub claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// The token's identifier (RFC 9068 `jti`), when it has one.
    pub jti: Option<Arc<str>>,
}

impl ValidToken {
    /// A token standing for `record`, without claims or `jti`.
    pub fn new(record: TokenRecord) -> Self {
        ValidToken {
            record,
            claims: None,
            jti: None,
        }
    }

    /// Sets the claims.
    pub fn with_claims(mut self, claims: serde_json::Map<String, serde_json::Value>) -> Self {
        self.claims = Some(Arc::new(claims));
        self
    }

    /// Sets the `jti`.
    pub fn with_jti(mut self, jti: impl Into<Arc<str>>) -> Self {
        self.jti = Some(jti.into());
        self
    }
}

/// Why a token was refused. Reaches audit events and debug logs, never the client (which
/// gets RFC 6750 `invalid_token` whatever the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// Not a token this server (or this format) knows: never issued, purged, or not this
    /// format's shape.
    Unknown,
    /// Its signature (or MAC) does not verify, or it names a key this server does not have.
    BadSignature,
    /// Its type is wrong (a JWT whose `typ` is not `at+jwt`, RFC 9068 §4).
    WrongType,
    /// Malformed: the shape is the format's, but it cannot be decoded.
    Malformed,
    /// Expired (or not valid yet), beyond the leeway.
    Expired,
    /// Issued for another resource (RFC 8707 audience), or by another issuer.
    WrongAudience,
    /// Revoked (the token, its grant or its client).
    Revoked,
    /// Issued to a client that no longer exists.
    UnknownClient,
}

impl Rejection {
    /// A short name, such as `bad_signature`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Unknown => "unknown",
            Rejection::BadSignature => "bad_signature",
            Rejection::WrongType => "wrong_type",
            Rejection::Malformed => "malformed",
            Rejection::Expired => "expired",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::Revoked => "revoked",
            Rejection::UnknownClient => "unknown_client",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of [`AccessTokenFormat::validate`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Validation {
    /// The token is this format's and valid (as far as the format judges).
    Valid(ValidToken),
    /// The token is refused, for this reason.
    Rejected(Rejection),
}

impl Validation {
    /// [`Validation::Valid`] of a bare record, [`Rejection::Unknown`] for `None` (how a
    /// store lookup answers).
    pub fn from_record(record: Option<TokenRecord>) -> Self {
        match record {
            Some(r) => Validation::Valid(ValidToken::new(r)),
            None => Validation::Rejected(Rejection::Unknown),
        }
    }

    /// The valid token, if any.
    pub fn valid(self) -> Option<ValidToken> {
        match self {
            Validation::Valid(v) => Some(v),
            Validation::Rejected(_) => None,
        }
    }
}

/// How access tokens are made and read back. See the [module docs](self).
///
/// Implementations must honour the grant tombstones of the store contract: a token of a
/// revoked grant must not validate ([`StorageError::GrantRevoked`] at issuance, or
/// [`Rejection::Revoked`] at validation), so a revocation cannot be outrun.
#[async_trait]
pub trait AccessTokenFormat: Send + Sync + 'static {
    /// Makes a new access token for `record` (and records whatever validation will need).
    /// A grant revoked meanwhile is [`StorageError::GrantRevoked`].
    async fn issue(
        &self,
        ctx: &FormatContext<'_>,
        record: &TokenRecord,
    ) -> Result<IssuedToken, StorageError>;

    /// The token's record if it is this format's, known and not revoked; else why not.
    /// `Err` only for an outage (a store that cannot answer), never for a bad token.
    /// Expiry and audience are checked by the caller on the record too.
    async fn validate(
        &self,
        ctx: &FormatContext<'_>,
        check: &ValidationContext<'_>,
        token: &str,
    ) -> Result<Validation, StorageError>;

    /// Revokes one token, returning its record if it was live.
    async fn revoke(
        &self,
        ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError>;

    /// Revokes every access token of a grant and tombstones the grant until `until`.
    /// The default asks the store ([`AccessTokenStore::revoke_access_grant`]).
    async fn revoke_grant(
        &self,
        ctx: &FormatContext<'_>,
        grant: GrantId,
        until: i64,
    ) -> Result<u64, StorageError> {
        ctx.store.revoke_access_grant(grant, until).await
    }

    /// Revokes every access token issued to `client_id` and tombstones the client until
    /// `until` (the server does it when the client is deleted). The default asks the store
    /// ([`AccessTokenStore::revoke_access_client`]). A self-contained format whose tokens
    /// the store does not hold overrides it (with a deny-list of the client until `until`),
    /// or relies on the server refusing tokens of clients that no longer exist.
    async fn revoke_client(
        &self,
        ctx: &FormatContext<'_>,
        client_id: &str,
        until: i64,
    ) -> Result<u64, StorageError> {
        ctx.store.revoke_access_client(client_id, until).await
    }
}

/// The default format: 256-bit random values (base64url), stored by SHA-256 digest in the
/// [`AccessTokenStore`].
#[derive(Debug, Default, Clone, Copy)]
pub struct OpaqueTokens;

#[async_trait]
impl AccessTokenFormat for OpaqueTokens {
    async fn issue(
        &self,
        ctx: &FormatContext<'_>,
        record: &TokenRecord,
    ) -> Result<IssuedToken, StorageError> {
        let value = ctx.random_value()?;
        ctx.store
            .put_access(&TokenDigest::of(&value), record)
            .await?;
        Ok(IssuedToken::for_record(value, record))
    }

    async fn validate(
        &self,
        ctx: &FormatContext<'_>,
        _check: &ValidationContext<'_>,
        token: &str,
    ) -> Result<Validation, StorageError> {
        Ok(Validation::from_record(
            ctx.store.access(&TokenDigest::of(token)).await?,
        ))
    }

    async fn revoke(
        &self,
        ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError> {
        ctx.store.revoke_access(&TokenDigest::of(token)).await
    }
}

/// The access-token formats a server knows, by name, and the server-wide default. Built by
/// the [`ServerBuilder`](crate::server::ServerBuilder): `opaque` ([`OpaqueTokens`]) is always
/// there; [`ServerBuilder::token_format`](crate::server::ServerBuilder::token_format) adds
/// more. A client picks one by name (`access_token_format` in its configuration or
/// [`ClientBuilder::access_token_format`](crate::client::ClientBuilder::access_token_format));
/// the others get the default (`oauth2.access_token_format`, `opaque` unless set). A name
/// that is not registered is refused at launch.
#[derive(Clone)]
pub struct FormatRegistry {
    /// In registration order, the default first.
    formats: Vec<(Arc<str>, Arc<dyn AccessTokenFormat>)>,
    by_name: HashMap<Arc<str>, usize>,
}

impl std::fmt::Debug for FormatRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl FormatRegistry {
    /// A registry with `default` first and the `others` (name, format) after it; a later
    /// entry of the same name replaces an earlier one.
    pub(crate) fn new(
        default: &str,
        entries: Vec<(String, Arc<dyn AccessTokenFormat>)>,
    ) -> Result<Self, String> {
        let mut all: Vec<(Arc<str>, Arc<dyn AccessTokenFormat>)> = Vec::new();
        for (name, f) in entries {
            match all.iter_mut().find(|(n, _)| **n == *name) {
                Some(slot) => slot.1 = f,
                None => all.push((name.into(), f)),
            }
        }
        let Some(pos) = all.iter().position(|(n, _)| **n == *default) else {
            return Err(unknown_format(default, all.iter().map(|(n, _)| &**n)));
        };
        let d = all.remove(pos);
        all.insert(0, d);
        let by_name = all
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        Ok(FormatRegistry {
            formats: all,
            by_name,
        })
    }

    /// The format registered as `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn AccessTokenFormat>> {
        self.by_name.get(name).map(|&i| &self.formats[i].1)
    }

    /// The server-wide default format.
    pub fn default_format(&self) -> &Arc<dyn AccessTokenFormat> {
        &self.formats[0].1
    }

    /// The server-wide default format's name.
    pub fn default_name(&self) -> &str {
        &self.formats[0].0
    }

    /// The format `client` gets its access tokens in: its own choice, else the default.
    /// `None` when the client names a format this server does not have.
    pub fn for_client(&self, client: &Client) -> Option<&Arc<dyn AccessTokenFormat>> {
        match client.access_token_format() {
            Some(name) => self.get(name),
            None => Some(self.default_format()),
        }
    }

    /// Every format, the default first, then in registration order (the order validation
    /// asks them in).
    pub fn formats(&self) -> impl Iterator<Item = &Arc<dyn AccessTokenFormat>> {
        self.formats.iter().map(|(_, f)| f)
    }

    /// Every registered name, the default first.
    pub fn names(&self) -> Vec<&str> {
        self.formats.iter().map(|(n, _)| &**n).collect()
    }

    /// Whether more than one format is registered.
    pub fn is_mixed(&self) -> bool {
        self.formats.len() > 1
    }

    /// Asks the formats in order (see the [module docs](self)) and returns the first answer
    /// that is not [`Rejection::Unknown`], with the format that gave it.
    pub async fn validate(
        &self,
        ctx: &FormatContext<'_>,
        check: &ValidationContext<'_>,
        token: &str,
    ) -> Result<(Validation, &Arc<dyn AccessTokenFormat>), StorageError> {
        let mut last = None;
        for f in self.formats() {
            let v = f.validate(ctx, check, token).await?;
            if v != Validation::Rejected(Rejection::Unknown) {
                return Ok((v, f));
            }
            last = Some(f);
        }
        Ok((
            Validation::Rejected(Rejection::Unknown),
            last.unwrap_or_else(|| self.default_format()),
        ))
    }

    /// Checks a format name a client or the configuration names.
    pub(crate) fn check(&self, name: &str) -> Result<(), String> {
        if self.by_name.contains_key(name) {
            Ok(())
        } else {
            Err(unknown_format(name, self.names().into_iter()))
        }
    }
}

fn unknown_format<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    format!(
        "access token format `{}` is not registered (registered: {}); register it with \
         `ServerBuilder::token_format` or the fairing's `OAuth2::token_format`",
        crate::error::printable(name),
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[&str]) -> Vec<(String, Arc<dyn AccessTokenFormat>)> {
        names
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    Arc::new(OpaqueTokens) as Arc<dyn AccessTokenFormat>,
                )
            })
            .collect()
    }

    #[test]
    fn the_default_format_is_asked_first_then_registration_order() {
        let r = FormatRegistry::new("b", entries(&["opaque", "a", "b", "c"])).unwrap();
        assert_eq!(r.names(), vec!["b", "opaque", "a", "c"]);
        assert_eq!(r.default_name(), "b");
        assert!(r.is_mixed());
    }

    #[test]
    fn registering_a_name_again_replaces_the_format_in_place() {
        let r = FormatRegistry::new("opaque", entries(&["opaque", "a", "a"])).unwrap();
        assert_eq!(r.names(), vec!["opaque", "a"]);
    }

    #[test]
    fn an_unknown_default_or_client_format_names_the_registered_ones() {
        let e = FormatRegistry::new("jwt", entries(&["opaque"])).unwrap_err();
        assert!(
            e.contains("`jwt`") && e.contains("registered: opaque"),
            "{e}"
        );
        let r = FormatRegistry::new("opaque", entries(&["opaque"])).unwrap();
        assert!(r.check("opaque").is_ok());
        assert!(r.check("jtw").unwrap_err().contains("`jtw`"));
    }

    #[test]
    fn a_client_gets_its_own_format_else_the_default_and_none_for_an_unknown_name() {
        let r = FormatRegistry::new("opaque", entries(&["opaque", "signed"])).unwrap();
        let own = Client::builder("a")
            .access_token_format("signed")
            .build()
            .unwrap();
        let plain = Client::builder("b").build().unwrap();
        let typo = Client::builder("c")
            .access_token_format("nope")
            .build()
            .unwrap();
        assert!(Arc::ptr_eq(
            r.for_client(&own).unwrap(),
            r.get("signed").unwrap()
        ));
        assert!(Arc::ptr_eq(
            r.for_client(&plain).unwrap(),
            r.default_format()
        ));
        assert!(r.for_client(&typo).is_none());
    }

    #[test]
    fn an_issued_token_never_shows_its_value_in_debug() {
        let t = IssuedToken::bearer("secret-value".into(), 60).with_jti("j1");
        let d = format!("{t:?}");
        assert!(!d.contains("secret-value") && d.contains("j1"), "{d}");
    }
}
