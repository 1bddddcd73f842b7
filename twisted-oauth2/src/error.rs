//! The wire error type ([`OAuthError`] with its [`ErrorCode`]) and the internal error types.
//!
//! [`OAuthError`] is the only error ever sent to a client. It knows its HTTP status
//! ([`OAuthError::status`]), its JSON body (RFC 6749 §5.2) and, where one applies, its
//! `WWW-Authenticate` challenge ([`OAuthError::www_authenticate`]). Internal causes
//! ([`StorageError`]) are logged where they turn into a [`ErrorCode::ServerError`] or
//! [`ErrorCode::TemporarilyUnavailable`] and are never serialized.
//!
//! Registered codes are variants of [`ErrorCode`]; an extension (a grant, an endpoint, a
//! proof-of-possession check) answers its own RFC code through [`ErrorCode::Extension`] with
//! an [`ExtensionCode`] that carries the code's status, e.g. [`ErrorCode::SLOW_DOWN`] or
//! [`ErrorCode::USE_DPOP_NONCE`], and adds response headers with [`OAuthError::with_header`].

use std::borrow::Cow;
use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The `error` values of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1 and RFC 7009 §2.2.1, and
/// the codes of extensions ([`ErrorCode::Extension`]).
///
/// Extension codes of the RFCs that this library's extensions answer have constants with
/// their statuses: [`ErrorCode::AUTHORIZATION_PENDING`], [`ErrorCode::SLOW_DOWN`],
/// [`ErrorCode::EXPIRED_TOKEN`] (RFC 8628), [`ErrorCode::INVALID_TARGET`] (RFC 8707),
/// [`ErrorCode::USE_DPOP_NONCE`], [`ErrorCode::INVALID_DPOP_PROOF`] (RFC 9449),
/// [`ErrorCode::INVALID_CLIENT_METADATA`], [`ErrorCode::INVALID_REDIRECT_URI`],
/// [`ErrorCode::INVALID_SOFTWARE_STATEMENT`] and [`ErrorCode::UNAPPROVED_SOFTWARE_STATEMENT`]
/// (RFC 7591). The constants are patterns:
///
/// ```
/// use twisted_oauth2::ErrorCode;
///
/// fn retry_later(code: ErrorCode) -> bool {
///     matches!(code, ErrorCode::AUTHORIZATION_PENDING | ErrorCode::SLOW_DOWN)
/// }
/// assert!(retry_later(ErrorCode::SLOW_DOWN));
/// assert_eq!(ErrorCode::SLOW_DOWN.as_str(), "slow_down");
/// ```
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
    /// A code defined by an extension of OAuth 2, with its HTTP status: see
    /// [`ExtensionCode::new`] and the constants of [`ErrorCode`].
    Extension(ExtensionCode),
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
            ErrorCode::Extension(code) => code.code(),
        }
    }

    /// The HTTP status this error carries when it is answered directly (not redirected).
    ///
    /// `invalid_client` and `invalid_token` are 401, `insufficient_scope` and
    /// `access_denied` 403, `server_error` 500, `temporarily_unavailable` 503, the other
    /// registered codes 400; an [`ErrorCode::Extension`] has the status it was made with.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope | ErrorCode::AccessDenied => 403,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            ErrorCode::Extension(code) => code.status(),
            _ => 400,
        }
    }

    /// The registered code spelled `code`, if there is one (the codes that are variants of
    /// [`ErrorCode`], not extensions).
    pub const fn registered(code: &str) -> Option<ErrorCode> {
        let mut i = 0;
        while i < REGISTERED.len() {
            if str_eq(REGISTERED[i].as_str(), code) {
                return Some(REGISTERED[i]);
            }
            i += 1;
        }
        None
    }

    /// `authorization_pending` (RFC 8628 §3.5, 400): the user has not yet decided.
    pub const AUTHORIZATION_PENDING: ErrorCode = ErrorCode::rfc("authorization_pending", 400);
    /// `slow_down` (RFC 8628 §3.5, 400): polling too fast; the interval grows by 5 seconds.
    pub const SLOW_DOWN: ErrorCode = ErrorCode::rfc("slow_down", 400);
    /// `expired_token` (RFC 8628 §3.5, 400): the device code has expired.
    pub const EXPIRED_TOKEN: ErrorCode = ErrorCode::rfc("expired_token", 400);
    /// `invalid_target` (RFC 8707 §2, 400): the requested `resource` is invalid, unknown or
    /// not allowed for this client.
    pub const INVALID_TARGET: ErrorCode = ErrorCode::rfc("invalid_target", 400);
    /// `use_dpop_nonce` (RFC 9449 §8, 400 at the authorization server): the DPoP proof must
    /// carry the nonce sent in the `DPoP-Nonce` header ([`OAuthError::with_header`]). A
    /// resource server answers it with `401` ([`OAuthError::with_status`], RFC 9449 §9).
    pub const USE_DPOP_NONCE: ErrorCode = ErrorCode::rfc("use_dpop_nonce", 400);
    /// `invalid_dpop_proof` (RFC 9449 §5, 400 at the authorization server): the DPoP proof is
    /// invalid. A resource server answers it with `401` (RFC 9449 §7.1).
    pub const INVALID_DPOP_PROOF: ErrorCode = ErrorCode::rfc("invalid_dpop_proof", 400);
    /// `invalid_redirect_uri` (RFC 7591 §3.2.2, 400): a registered redirect URI is invalid.
    pub const INVALID_REDIRECT_URI: ErrorCode = ErrorCode::rfc("invalid_redirect_uri", 400);
    /// `invalid_client_metadata` (RFC 7591 §3.2.2, 400): a client metadata field is invalid.
    pub const INVALID_CLIENT_METADATA: ErrorCode = ErrorCode::rfc("invalid_client_metadata", 400);
    /// `invalid_software_statement` (RFC 7591 §3.2.2, 400).
    pub const INVALID_SOFTWARE_STATEMENT: ErrorCode =
        ErrorCode::rfc("invalid_software_statement", 400);
    /// `unapproved_software_statement` (RFC 7591 §3.2.2, 400).
    pub const UNAPPROVED_SOFTWARE_STATEMENT: ErrorCode =
        ErrorCode::rfc("unapproved_software_statement", 400);

    const fn rfc(code: &'static str, status: u16) -> ErrorCode {
        ErrorCode::Extension(ExtensionCode::new(code, status))
    }
}

/// The registered codes, for [`ErrorCode::registered`].
const REGISTERED: [ErrorCode; 13] = [
    ErrorCode::InvalidRequest,
    ErrorCode::InvalidClient,
    ErrorCode::InvalidGrant,
    ErrorCode::UnauthorizedClient,
    ErrorCode::UnsupportedGrantType,
    ErrorCode::InvalidScope,
    ErrorCode::AccessDenied,
    ErrorCode::UnsupportedResponseType,
    ErrorCode::ServerError,
    ErrorCode::TemporarilyUnavailable,
    ErrorCode::InvalidToken,
    ErrorCode::InsufficientScope,
    ErrorCode::UnsupportedTokenType,
];

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// An `error` code defined by an extension of OAuth 2 and the HTTP status it is answered
/// with, carried by [`ErrorCode::Extension`].
///
/// The code is checked when it is made: it uses only the RFC 6749 §5.2 `error` characters
/// (printable ASCII other than `"` and `\`; this library also refuses spaces), it is not a
/// registered code (those are variants of [`ErrorCode`], so that equal codes compare
/// equal), and the status is a client or server error (400–599). In a `const` the check runs
/// at compile time:
///
/// ```
/// use twisted_oauth2::error::ExtensionCode;
/// use twisted_oauth2::{ErrorCode, OAuthError};
///
/// const MFA_REQUIRED: ErrorCode = ErrorCode::Extension(ExtensionCode::new("mfa_required", 403));
///
/// let e = OAuthError::with_description(MFA_REQUIRED, "a second factor is required");
/// assert_eq!(e.status(), 403);
/// assert_eq!(e.to_json(), r#"{"error":"mfa_required","error_description":"a second factor is required"}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtensionCode {
    code: &'static str,
    status: u16,
}

impl ExtensionCode {
    /// The extension code `code` answered with `status`.
    ///
    /// # Panics
    ///
    /// If [`ExtensionCode::try_new`] refuses the code or status: use it in a `const` item,
    /// where the panic is a compile error, or call [`ExtensionCode::try_new`].
    pub const fn new(code: &'static str, status: u16) -> Self {
        match ExtensionCode::try_new(code, status) {
            Ok(c) => c,
            Err(InvalidErrorCode::Empty) => panic!("an OAuth error code must not be empty"),
            Err(InvalidErrorCode::Character) => panic!(
                "an OAuth error code uses only printable ASCII other than space, `\"` and `\\` (RFC 6749 section 5.2)"
            ),
            Err(InvalidErrorCode::Registered(_)) => panic!(
                "this OAuth error code is registered: use its `ErrorCode` variant, not an extension code"
            ),
            Err(InvalidErrorCode::Status(_)) => {
                panic!("an OAuth error's HTTP status must be in 400..=599")
            }
        }
    }

    /// The extension code `code` answered with `status`, or why it cannot be one.
    pub const fn try_new(code: &'static str, status: u16) -> Result<Self, InvalidErrorCode> {
        let b = code.as_bytes();
        if b.is_empty() {
            return Err(InvalidErrorCode::Empty);
        }
        let mut i = 0;
        while i < b.len() {
            // RFC 6749 §5.2 / Appendix A.7: `error = 1*NQSCHAR`, NQSCHAR = %x20-21 / %x23-5B /
            // %x5D-7E; the space (%x20) is refused as well, as no registered code has one.
            if !matches!(b[i], 0x21 | 0x23..=0x5B | 0x5D..=0x7E) {
                return Err(InvalidErrorCode::Character);
            }
            i += 1;
        }
        if let Some(registered) = ErrorCode::registered(code) {
            return Err(InvalidErrorCode::Registered(registered));
        }
        if status < 400 || status > 599 {
            return Err(InvalidErrorCode::Status(status));
        }
        Ok(ExtensionCode { code, status })
    }

    /// The `error` string.
    pub const fn code(self) -> &'static str {
        self.code
    }

    /// The HTTP status of a direct answer.
    pub const fn status(self) -> u16 {
        self.status
    }
}

/// Why [`ExtensionCode::try_new`] refused a code.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidErrorCode {
    /// The code is empty.
    #[error("an OAuth error code must not be empty")]
    Empty,
    /// The code holds a character outside the RFC 6749 §5.2 `error` set (or a space).
    #[error("an OAuth error code uses only printable ASCII other than space, `\"` and `\\`")]
    Character,
    /// The code is a registered one: use its [`ErrorCode`] variant.
    #[error("`{0}` is a registered OAuth error code: use its ErrorCode variant")]
    Registered(ErrorCode),
    /// The status is not a client or server error (400–599).
    #[error("HTTP status {0} is not in 400..=599")]
    Status(u16),
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
    challenge: Option<Challenge>,
    status: Option<u16>,
    condition: Option<Condition>,
    // Boxed: rarely set, and every `Result<_, OAuthError>` carries the field.
    extra: Option<Box<Extra>>,
}

/// The rarely set parts of an [`OAuthError`]: its `error_uri` and extra headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Extra {
    uri: Option<Cow<'static, str>>,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
}

/// What a library-made error means beyond its code, for decisions that must not read the
/// description text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// The request to a protected resource carried no token (RFC 6750 §3.1).
    MissingToken,
    /// The request body exceeded the configured limit (`413`).
    BodyTooLarge,
    /// The URL query exceeded the configured limit (`414`).
    QueryTooLong,
}

/// Headers the responder writes itself or that describe the message framing: an error's
/// extra headers ([`OAuthError::with_header`]) never set them.
const RESERVED_HEADERS: [&str; 7] = [
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "cache-control",
    "pragma",
    "location",
];

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
            challenge: None,
            status: None,
            condition: None,
            extra: None,
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
        self.extra.get_or_insert_default().uri = Some(sanitize(uri.into()));
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

    /// Adds a response header to a direct answer, e.g. `DPoP-Nonce` with
    /// [`ErrorCode::USE_DPOP_NONCE`] (RFC 9449 §8) or a `WWW-Authenticate` challenge of
    /// another scheme (`DPoP`), which is written beside the error's own
    /// [`Challenge`], if any. A second header of the same name (ASCII case-insensitive)
    /// replaces the first.
    ///
    /// The header is dropped, with a warning in the log, when `name` is not an RFC 9110
    /// token or is one the responder owns (`Content-Type`, `Content-Length`,
    /// `Transfer-Encoding`, `Connection`, `Cache-Control`, `Pragma`, `Location`). Characters
    /// of `value` outside visible ASCII, space and tab become `?`.
    /// Redirects to the client carry no extra headers.
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        let name = name.into();
        if name.is_empty() || !name.bytes().all(is_tchar) {
            log::warn!(
                "twisted-oauth2: error header dropped: `{}` is not a header name",
                printable(&name)
            );
            return self;
        }
        if RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&name))
        {
            log::warn!("twisted-oauth2: error header dropped: `{name}` is set by the responder");
            return self;
        }
        let value = value.into();
        let value = if value.bytes().all(header_value_byte) {
            value
        } else {
            Cow::Owned(
                value
                    .chars()
                    .map(|c| {
                        if c.is_ascii() && header_value_byte(c as u8) {
                            c
                        } else {
                            '?'
                        }
                    })
                    .collect(),
            )
        };
        let headers = &mut self.extra.get_or_insert_default().headers;
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        headers.push((name, value));
        self
    }

    /// The extra response headers ([`OAuthError::with_header`]), in the order they were added.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.extra
            .iter()
            .flat_map(|x| x.headers.iter())
            .map(|(n, v)| (&**n, &**v))
    }

    /// `invalid_request` for a body larger than the configured limit (`413`); see
    /// [`OAuthError::is_body_too_large`].
    pub fn body_too_large(limit: u64) -> Self {
        let mut e = OAuthError::invalid_request(format!(
            "the request body is too large (limit {limit} bytes)"
        ))
        .with_status(413);
        e.condition = Some(Condition::BodyTooLarge);
        e
    }

    /// `invalid_request` for a URL query longer than the configured limit (`414`); see
    /// [`OAuthError::is_query_too_long`].
    pub fn query_too_long(limit: u64) -> Self {
        let mut e =
            OAuthError::invalid_request(format!("the URL query is too long (limit {limit} bytes)"))
                .with_status(414);
        e.condition = Some(Condition::QueryTooLong);
        e
    }

    /// The answer of a protected resource to a request that carried no access token:
    /// `invalid_request` with a `Bearer` challenge for `required_scope` (none if empty),
    /// answered `401` with a challenge that has no error code (RFC 6750 §3.1); see
    /// [`OAuthError::is_missing_token`].
    pub fn no_token(required_scope: &str) -> Self {
        let mut e = OAuthError::invalid_request(MISSING_TOKEN).with_challenge(Challenge::Bearer {
            scope: (!required_scope.is_empty()).then(|| required_scope.to_owned()),
        });
        e.condition = Some(Condition::MissingToken);
        e
    }

    /// Whether this is the answer to a body larger than the limit
    /// ([`OAuthError::body_too_large`]).
    pub fn is_body_too_large(&self) -> bool {
        self.condition == Some(Condition::BodyTooLarge)
    }

    /// Whether this is the answer to a URL query longer than the limit
    /// ([`OAuthError::query_too_long`]).
    pub fn is_query_too_long(&self) -> bool {
        self.condition == Some(Condition::QueryTooLong)
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
        self.extra.as_ref().and_then(|x| x.uri.as_deref())
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

    /// A bearer challenge for a request that carried no token (RFC 6750 §3.1: no error code):
    /// an error made by [`OAuthError::no_token`] that still carries a `Bearer` challenge.
    pub fn missing_token(&self) -> bool {
        self.condition == Some(Condition::MissingToken)
            && self.code == ErrorCode::InvalidRequest
            && matches!(self.challenge, Some(Challenge::Bearer { .. }))
    }

    /// Whether this is the "no token in the request" answer of a protected resource
    /// ([`OAuthError::no_token`]).
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
        let uri = self.uri();
        let n = 1 + self.description.is_some() as usize + uri.is_some() as usize;
        let mut map = s.serialize_map(Some(n))?;
        map.serialize_entry("error", self.code.as_str())?;
        if let Some(d) = &self.description {
            map.serialize_entry("error_description", d)?;
        }
        if let Some(u) = uri {
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

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 §5.5 field value bytes this library writes: visible ASCII, space and tab.
fn header_value_byte(b: u8) -> bool {
    matches!(b, b'\t' | 0x20..=0x7E)
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
    /// A [`ClientRegistry::create_client`](crate::storage::ClientRegistry::create_client)
    /// for an id that is already taken (by a stored client or one from the configuration):
    /// the store wrote nothing. Of concurrent creations with one id exactly one succeeds.
    #[error("a client with this id already exists")]
    ClientExists,
    /// An update or deletion through the [`ClientRegistry`](crate::storage::ClientRegistry)
    /// of a client defined in the configuration (`oauth2.clients`), which only a change of
    /// the configuration can change.
    #[error("the client is defined in the configuration and cannot be changed at run time")]
    ClientReadOnly,
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
        let e = OAuthError::no_token("a b");
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
    fn extension_codes_carry_their_rfc_status_and_serialize_as_their_code() {
        for (code, name, status) in [
            (
                ErrorCode::AUTHORIZATION_PENDING,
                "authorization_pending",
                400,
            ),
            (ErrorCode::SLOW_DOWN, "slow_down", 400),
            (ErrorCode::EXPIRED_TOKEN, "expired_token", 400),
            (ErrorCode::INVALID_TARGET, "invalid_target", 400),
            (ErrorCode::USE_DPOP_NONCE, "use_dpop_nonce", 400),
            (ErrorCode::INVALID_DPOP_PROOF, "invalid_dpop_proof", 400),
            (
                ErrorCode::INVALID_CLIENT_METADATA,
                "invalid_client_metadata",
                400,
            ),
            (ErrorCode::INVALID_REDIRECT_URI, "invalid_redirect_uri", 400),
            (
                ErrorCode::INVALID_SOFTWARE_STATEMENT,
                "invalid_software_statement",
                400,
            ),
            (
                ErrorCode::UNAPPROVED_SOFTWARE_STATEMENT,
                "unapproved_software_statement",
                400,
            ),
        ] {
            assert_eq!(code.as_str(), name);
            assert_eq!(code.to_string(), name);
            assert_eq!(code.status(), status, "{name}");
            let e = OAuthError::new(code);
            assert_eq!(e.status(), status);
            assert_eq!(e.to_json(), format!(r#"{{"error":"{name}"}}"#));
            assert_eq!(ErrorCode::registered(name), None);
        }
        let custom = ErrorCode::Extension(ExtensionCode::new("mfa_required", 403));
        assert_eq!(OAuthError::new(custom).status(), 403);
        assert_eq!(
            OAuthError::new(ErrorCode::USE_DPOP_NONCE)
                .with_status(401)
                .status(),
            401
        );
        // The constants are patterns.
        assert!(matches!(ErrorCode::SLOW_DOWN, ErrorCode::SLOW_DOWN));
        assert!(!matches!(
            ErrorCode::SLOW_DOWN,
            ErrorCode::AUTHORIZATION_PENDING
        ));
    }

    #[test]
    fn extension_codes_use_only_the_rfc6749_error_charset() {
        assert_eq!(
            ExtensionCode::try_new("", 400),
            Err(InvalidErrorCode::Empty)
        );
        for bad in ["a b", "a\"b", "a\\b", "caf\u{e9}", "a\nb", "a\u{7f}", "\t"] {
            assert_eq!(
                ExtensionCode::try_new(bad, 400),
                Err(InvalidErrorCode::Character),
                "{bad:?}"
            );
        }
        let all: &'static str = "!#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";
        assert_eq!(ExtensionCode::try_new(all, 400).map(|c| c.code()), Ok(all));
        assert_eq!(
            ExtensionCode::try_new("invalid_grant", 400),
            Err(InvalidErrorCode::Registered(ErrorCode::InvalidGrant))
        );
        for status in [0, 200, 302, 399, 600] {
            assert_eq!(
                ExtensionCode::try_new("x", status),
                Err(InvalidErrorCode::Status(status))
            );
        }
        assert_eq!(
            ExtensionCode::try_new("x", 599).map(|c| c.status()),
            Ok(599)
        );
    }

    #[test]
    fn registered_codes_are_found_by_name() {
        for code in REGISTERED {
            assert_eq!(ErrorCode::registered(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::registered("slow_down"), None);
        assert_eq!(ErrorCode::registered("invalid_gran"), None);
    }

    #[test]
    #[should_panic(expected = "registered")]
    fn new_extension_code_panics_outside_const_on_a_registered_code() {
        let _ = ExtensionCode::new(std::hint::black_box("invalid_request"), 400);
    }

    #[test]
    fn error_stays_small() {
        // Every `Result<_, OAuthError>` carries it (clippy's `result_large_err` bound is 128).
        assert!(std::mem::size_of::<OAuthError>() <= 104);
        assert!(std::mem::size_of::<ErrorCode>() <= 32);
    }

    #[test]
    fn extra_headers_are_kept_replaced_by_name_and_sanitized() {
        let e = OAuthError::new(ErrorCode::USE_DPOP_NONCE)
            .with_header("DPoP-Nonce", "eyJ7S_zG.eyJH0-Z.HX4w-7v")
            .with_header("X-Other", "a\r\nSet-Cookie: x=\u{e9}")
            .with_header("dpop-nonce", "n2");
        assert_eq!(
            e.headers().collect::<Vec<_>>(),
            [("X-Other", "a??Set-Cookie: x=?"), ("dpop-nonce", "n2")]
        );
        let e = OAuthError::new(ErrorCode::SLOW_DOWN)
            .with_header("Bad Name", "x")
            .with_header("", "x")
            .with_header("Cache-Control", "public")
            .with_header("content-type", "text/html")
            .with_header("Location", "https://evil");
        assert_eq!(e.headers().count(), 0);
        // Headers do not change the body, the status or the challenge.
        let e = OAuthError::invalid_request("x").with_header("Retry-After", "5");
        assert_eq!(
            e.to_json(),
            r#"{"error":"invalid_request","error_description":"x"}"#
        );
        assert_eq!(e.status(), 400);
        assert_eq!(e.www_authenticate("api", None), None);
    }

    #[test]
    fn missing_token_is_a_typed_marker_not_the_description() {
        let e = OAuthError::no_token("");
        assert!(e.is_missing_token() && e.missing_token());
        assert_eq!(e.status(), 401);
        assert_eq!(
            e.www_authenticate("api", None).unwrap(),
            "Bearer realm=\"api\""
        );
        // The same code, description and challenge built by hand are an ordinary 400.
        let lookalike = OAuthError::invalid_request(MISSING_TOKEN)
            .with_challenge(Challenge::Bearer { scope: None });
        assert!(!lookalike.is_missing_token());
        assert_eq!(lookalike.status(), 400);
        // A changed description keeps the meaning; a challenge of another scheme drops it.
        assert!(e.clone().describe("none here").is_missing_token());
        assert!(!e.with_challenge(Challenge::Basic).is_missing_token());
    }

    #[test]
    fn too_large_answers_are_typed() {
        let body = OAuthError::body_too_large(10);
        assert!(body.is_body_too_large() && !body.is_query_too_long());
        assert_eq!(body.status(), 413);
        let query = OAuthError::query_too_long(10);
        assert!(query.is_query_too_long() && !query.is_body_too_large());
        assert_eq!(query.status(), 414);
        let lookalike = OAuthError::invalid_request(body.description().unwrap().to_owned());
        assert!(!lookalike.is_body_too_large());
        assert!(!OAuthError::no_token("").is_body_too_large());
    }

    #[test]
    fn unavailable_store_maps_to_temporarily_unavailable() {
        let e = OAuthError::from(StorageError::unavailable(std::io::Error::other("down")));
        assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);
        let e = OAuthError::from(StorageError::other(std::io::Error::other("x")));
        assert_eq!(e.code(), ErrorCode::ServerError);
    }
}
