//! The wire error type ([`OAuthError`] with its [`ErrorCode`]) and the internal error types.
//!
//! [`OAuthError`] is the only error ever sent to a client. It knows its HTTP status
//! ([`OAuthError::status`]), its JSON body (RFC 6749 §5.2) and, where one applies, its
//! `WWW-Authenticate` challenge ([`OAuthError::www_authenticate`]). Internal causes
//! ([`StorageError`]) are logged where they turn into a [`ErrorCode::ServerError`] or
//! [`ErrorCode::TemporarilyUnavailable`] and are never serialized.

use std::borrow::Cow;
use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The `error` values of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1 and RFC 7009 §2.2.1.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `invalid_request`: missing, duplicate, malformed or unsupported parameter.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (RFC 6749 §5.2).
    InvalidClient,
    /// `invalid_grant`: the code, refresh token or resource-owner credentials are not valid.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant or response type.
    UnauthorizedClient,
    /// `unsupported_grant_type`: the server does not support this `grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`: the scope is malformed, unknown, or exceeds what was granted.
    InvalidScope,
    /// `access_denied`: the resource owner or the server denied the request (RFC 6749 §4.1.2.1).
    AccessDenied,
    /// `unsupported_response_type` (RFC 6749 §4.1.2.1).
    UnsupportedResponseType,
    /// `server_error`: an unexpected condition; the cause is logged, never sent.
    ServerError,
    /// `temporarily_unavailable`: the store or server is overloaded or down.
    TemporarilyUnavailable,
    /// `invalid_token` (RFC 6750 §3.1): the access token is unknown, expired or revoked.
    InvalidToken,
    /// `insufficient_scope` (RFC 6750 §3.1): the token lacks a required scope.
    InsufficientScope,
    /// `unsupported_token_type` (RFC 7009 §2.2.1).
    UnsupportedTokenType,
}

impl ErrorCode {
    /// The registered `error` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
        }
    }

    /// The HTTP status this error carries when it is answered directly (not redirected).
    ///
    /// `invalid_client` and `invalid_token` are 401, `insufficient_scope` and
    /// `access_denied` 403, `server_error` 500, `temporarily_unavailable` 503, the rest 400.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope | ErrorCode::AccessDenied => 403,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which `WWW-Authenticate` challenge an error carries.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`: client authentication with HTTP Basic failed (RFC 6749 §5.2).
    Basic,
    /// `Bearer realm="..."[, error=...]`: a protected resource refused the request (RFC 6750 §3).
    /// `scope` is the scope the resource requires, if any.
    Bearer {
        /// The scope the resource requires, sent as `scope="..."`.
        scope: Option<String>,
    },
}

/// The error answered to a client: RFC 6749 §5.2 / §4.1.2.1 and RFC 6750 §3.1.
///
/// Serializes to `{"error": ..., "error_description": ..., "error_uri": ...}`. Descriptions
/// are fixed texts chosen by the library, never echoes of secrets.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}{}", .description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct OAuthError {
    code: ErrorCode,
    description: Option<Cow<'static, str>>,
    uri: Option<Cow<'static, str>>,
    challenge: Option<Challenge>,
    status: Option<u16>,
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OAuthError({self})")
    }
}

impl OAuthError {
    /// An error with a code and no description.
    pub const fn new(code: ErrorCode) -> Self {
        OAuthError {
            code,
            description: None,
            uri: None,
            challenge: None,
            status: None,
        }
    }

    /// An error with a code and a human-readable description.
    pub fn with_description(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::new(code).describe(description)
    }

    /// Sets the `error_description`. Only printable ASCII except `"` and `\` is kept
    /// (RFC 6749 §5.2); other characters become `?`.
    pub fn describe(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.description = Some(sanitize(description.into()));
        self
    }

    /// Sets the `error_uri`.
    pub fn with_uri(mut self, uri: impl Into<Cow<'static, str>>) -> Self {
        self.uri = Some(sanitize(uri.into()));
        self
    }

    /// Attaches a `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// Overrides the HTTP status of a direct answer, for errors whose RFC code is right but
    /// whose HTTP meaning is more precise: `413` for an oversize body, `414` for an
    /// oversize URL query, `503` when a bounded table is full. Codes outside 400–599 are
    /// ignored.
    pub fn with_status(mut self, status: u16) -> Self {
        if (400..600).contains(&status) {
            self.status = Some(status);
        }
        self
    }

    /// `invalid_request` for a body larger than the configured limit (`413`).
    pub fn body_too_large(limit: u64) -> Self {
        OAuthError::invalid_request(format!(
            "the request body is too large (limit {limit} bytes)"
        ))
        .with_status(413)
    }

    /// `invalid_request` for a URL query longer than the configured limit (`414`).
    pub fn query_too_long(limit: u64) -> Self {
        OAuthError::invalid_request(format!("the URL query is too long (limit {limit} bytes)"))
            .with_status(414)
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::with_description(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_request` for a parameter that appears more than once (RFC 6749 §3.1, §3.2).
    pub fn duplicate_parameter(name: &str) -> Self {
        OAuthError::invalid_request(format!("duplicate parameter: {}", printable(name)))
    }

    /// `invalid_request` for a required parameter that is absent.
    pub fn missing_parameter(name: &str) -> Self {
        OAuthError::invalid_request(format!("missing parameter: {}", printable(name)))
    }

    /// `invalid_grant` with a description.
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::with_description(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope` with a description.
    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::with_description(ErrorCode::InvalidScope, description)
    }

    /// `invalid_client` with a description and a `Basic` challenge: its answer is a 401,
    /// and every 401 names an authentication scheme (RFC 9110 §15.5.2, RFC 6749 §5.2).
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::with_description(ErrorCode::InvalidClient, description)
            .with_challenge(Challenge::Basic)
    }

    /// `unauthorized_client` with a description.
    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::with_description(ErrorCode::UnauthorizedClient, description)
    }

    /// `server_error` for an internal failure. The cause is logged here (without secrets:
    /// causes never carry tokens or codes) and not sent.
    pub fn server_error(cause: &dyn std::error::Error) -> Self {
        log::error!("twisted-oauth2: internal error: {cause}");
        OAuthError::with_description(
            ErrorCode::ServerError,
            "the server encountered an unexpected condition",
        )
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The `error_description`, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The `error_uri`, if any.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }

    /// The attached challenge, if any.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }

    /// The HTTP status of a direct (non-redirect) answer. See [`ErrorCode::status`].
    pub fn status(&self) -> u16 {
        if let Some(s) = self.status {
            s
        } else if self.missing_token() {
            401
        } else {
            self.code.status()
        }
    }

    /// The `WWW-Authenticate` header value for this error in `realm`, if it carries a
    /// challenge. A Bearer challenge for a request that had no token at all
    /// (`invalid_request` with [`OAuthError::is_missing_token`]) carries no error code
    /// (RFC 6750 §3.1).
    pub fn www_authenticate(&self, realm: &str, resource_metadata: Option<&str>) -> Option<String> {
        let challenge = self.challenge.as_ref()?;
        let mut out = String::with_capacity(96);
        match challenge {
            Challenge::Basic => {
                out.push_str("Basic realm=\"");
                out.push_str(&quoted(realm));
                out.push('"');
            }
            Challenge::Bearer { scope } => {
                out.push_str("Bearer realm=\"");
                out.push_str(&quoted(realm));
                out.push('"');
                if !self.missing_token() {
                    out.push_str(", error=\"");
                    out.push_str(self.code.as_str());
                    out.push('"');
                    if let Some(d) = &self.description {
                        out.push_str(", error_description=\"");
                        out.push_str(d);
                        out.push('"');
                    }
                }
                if let Some(scope) = scope {
                    if self.code == ErrorCode::InsufficientScope || self.missing_token() {
                        out.push_str(", scope=\"");
                        out.push_str(&quoted(scope));
                        out.push('"');
                    }
                }
                if let Some(url) = resource_metadata {
                    out.push_str(", resource_metadata=\"");
                    out.push_str(&quoted(url));
                    out.push('"');
                }
            }
        }
        Some(out)
    }

    /// A bearer challenge for a request that carried no token (RFC 6750 §3.1: no error code).
    pub fn missing_token(&self) -> bool {
        self.code == ErrorCode::InvalidRequest
            && self.description.as_deref() == Some(MISSING_TOKEN)
            && matches!(self.challenge, Some(Challenge::Bearer { .. }))
    }

    /// Whether this is the "no token in the request" answer of a protected resource.
    pub fn is_missing_token(&self) -> bool {
        self.missing_token()
    }

    /// The JSON body as a string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            // Serializing a struct of plain strings cannot fail; keep a valid body regardless.
            format!("{{\"error\":\"{}\"}}", self.code.as_str())
        })
    }

    /// Maps a storage failure to the RFC error: a store that is unreachable or timed out
    /// is `temporarily_unavailable`, anything else `server_error`. The cause is logged.
    pub fn from_storage(err: StorageError) -> Self {
        match err {
            StorageError::Unavailable(cause) => {
                log::error!("twisted-oauth2: store unavailable: {cause}");
                OAuthError::with_description(
                    ErrorCode::TemporarilyUnavailable,
                    "the authorization server's store is temporarily unavailable",
                )
            }
            // A revocation of the grant won the race against this issuance (RFC 6749
            // §4.1.2, RFC 6819 §5.1.5.4): the grant is no longer valid, nothing was stored.
            StorageError::GrantRevoked => {
                log::info!("twisted-oauth2: token issuance refused: the grant was revoked");
                OAuthError::invalid_grant("the authorization grant is invalid, expired or revoked")
            }
            other => OAuthError::server_error(&other),
        }
    }
}

pub(crate) const MISSING_TOKEN: &str = "no access token in the request";

impl From<StorageError> for OAuthError {
    fn from(err: StorageError) -> Self {
        OAuthError::from_storage(err)
    }
}

impl Serialize for OAuthError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = 1 + self.description.is_some() as usize + self.uri.is_some() as usize;
        let mut map = s.serialize_map(Some(n))?;
        map.serialize_entry("error", self.code.as_str())?;
        if let Some(d) = &self.description {
            map.serialize_entry("error_description", d)?;
        }
        if let Some(u) = &self.uri {
            map.serialize_entry("error_uri", u)?;
        }
        map.end()
    }
}

/// Keeps the characters RFC 6749 §5.2 allows in `error_description` (%x20-21 / %x23-5B /
/// %x5D-7E), replacing the others with `?`.
fn sanitize(s: Cow<'static, str>) -> Cow<'static, str> {
    if s.bytes().all(allowed) {
        s
    } else {
        Cow::Owned(printable(&s))
    }
}

fn allowed(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// `s` with every character outside the RFC 6749 §5.2 description set replaced by `?`.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && allowed(c as u8) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn quoted(s: &str) -> Cow<'_, str> {
    if s.bytes().all(allowed) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(printable(s))
    }
}

/// A failure of a storage backend. Never sent to clients; mapped by
/// [`OAuthError::from_storage`].
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store could not be reached or timed out; retrying later may succeed.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt")]
    Corrupt(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Any other backend failure.
    #[error("store failure")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A token write for a grant that has been revoked (its tombstone is still live): the
    /// store wrote nothing. Answered `invalid_grant`, never a 5xx.
    #[error("the grant has been revoked")]
    GrantRevoked,
}

impl StorageError {
    /// Wraps a cause as [`StorageError::Other`].
    pub fn other(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        StorageError::Other(Box::new(cause))
    }

    /// Wraps a cause as [`StorageError::Unavailable`].
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        StorageError::Unavailable(Box::new(cause))
    }
}

/// A configuration problem found when the server is built (launch is aborted).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A client definition is invalid.
    #[error("client `{client}`: {reason}")]
    Client {
        /// The client id.
        client: String,
        /// What is wrong.
        reason: String,
    },
    /// A server setting is invalid.
    #[error("setting `oauth2.{key}`: {reason}")]
    Setting {
        /// The config key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_has_error_description_and_uri_rfc6749_5_2() {
        let e = OAuthError::invalid_request("bad").with_uri("https://x/err");
        assert_eq!(
            e.to_json(),
            r#"{"error":"invalid_request","error_description":"bad","error_uri":"https://x/err"}"#
        );
        assert_eq!(
            OAuthError::new(ErrorCode::InvalidGrant).to_json(),
            r#"{"error":"invalid_grant"}"#
        );
    }

    #[test]
    fn revoked_grant_is_invalid_grant_not_a_server_error() {
        let e = OAuthError::from_storage(StorageError::GrantRevoked);
        assert_eq!(e.code(), ErrorCode::InvalidGrant);
        assert_eq!(e.status(), 400);
        assert!(!e.to_json().contains("tombstone"), "{}", e.to_json());
    }

    #[test]
    fn statuses_follow_rfc6749_and_rfc6750() {
        assert_eq!(ErrorCode::InvalidRequest.status(), 400);
        assert_eq!(ErrorCode::InvalidClient.status(), 401);
        assert_eq!(ErrorCode::InvalidToken.status(), 401);
        assert_eq!(ErrorCode::InsufficientScope.status(), 403);
        assert_eq!(ErrorCode::ServerError.status(), 500);
        assert_eq!(ErrorCode::TemporarilyUnavailable.status(), 503);
        assert_eq!(ErrorCode::UnsupportedGrantType.status(), 400);
    }

    #[test]
    fn description_outside_rfc6749_charset_is_replaced() {
        let e = OAuthError::invalid_request("a\"b\\c\u{e9}\n");
        assert_eq!(e.description(), Some("a?b?c??"));
    }

    #[test]
    fn basic_challenge_names_realm() {
        let e = OAuthError::invalid_client("x").with_challenge(Challenge::Basic);
        assert_eq!(
            e.www_authenticate("oauth2", None).unwrap(),
            "Basic realm=\"oauth2\""
        );
    }

    #[test]
    fn bearer_challenge_without_token_has_no_error_rfc6750_3_1() {
        let e = OAuthError::invalid_request(MISSING_TOKEN).with_challenge(Challenge::Bearer {
            scope: Some("a b".into()),
        });
        assert_eq!(
            e.www_authenticate("api", None).unwrap(),
            "Bearer realm=\"api\", scope=\"a b\""
        );
    }

    #[test]
    fn insufficient_scope_challenge_lists_scope() {
        let e = OAuthError::with_description(ErrorCode::InsufficientScope, "need more")
            .with_challenge(Challenge::Bearer {
                scope: Some("a".into()),
            });
        assert_eq!(
            e.www_authenticate("api", Some("https://rs/.well-known/oauth-protected-resource"))
                .unwrap(),
            "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"need more\", scope=\"a\", resource_metadata=\"https://rs/.well-known/oauth-protected-resource\""
        );
    }

    #[test]
    fn unavailable_store_maps_to_temporarily_unavailable() {
        let e = OAuthError::from(StorageError::unavailable(std::io::Error::other("down")));
        assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);
        let e = OAuthError::from(StorageError::other(std::io::Error::other("x")));
        assert_eq!(e.code(), ErrorCode::ServerError);
    }
}
