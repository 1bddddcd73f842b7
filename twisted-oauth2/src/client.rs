//! Registered clients (RFC 6749 §2): kind, redirect URIs, allowed grants and scopes, and
//! hashed secrets compared in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ConfigError;
use crate::scope::Scope;

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientKind {
    /// A public client (native or browser app): identified by `client_id` only, must use PKCE.
    Public,
    /// A confidential client authenticated with a secret.
    Confidential,
}

/// A client secret kept as its SHA-256 digest; the plain secret is never stored.
#[derive(Clone)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// Digests a plain secret.
    pub fn of(secret: &str) -> Self {
        SecretDigest(Sha256::digest(secret.as_bytes()).into())
    }

    /// Parses a hex-encoded SHA-256 digest (64 hex digits), as given in config
    /// (`secret_sha256`).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(SecretDigest(out))
    }

    /// The digest as 64 lowercase hex digits (the form [`SecretDigest::from_hex`] reads and
    /// `secret_sha256` takes).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Compares a presented secret with this digest in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

/// A registered redirect URI (RFC 6749 §3.1.2): an RFC 3986 absolute URI without fragment,
/// kept in one normalised form. Custom schemes (`com.example.app:/cb`) are allowed for
/// native apps (RFC 8252 §7.1).
///
/// **Parsing is strict and never repairs.** The string must be an RFC 3986 `absolute-URI`
/// as it stands: a space, a backslash, a control character, a raw non-ASCII character or
/// a missing `//` is refused, not fixed (a WHATWG URL parser would turn
/// `https://a.example\@evil.example/cb` into a URL for `evil.example`). An `http` or
/// `https` URI needs a non-empty host that is not percent-encoded (a browser would decode
/// and IDNA-map it, so the code would go elsewhere than the string says). A port must be
/// a number up to 65535.
///
/// **One normalised form** ([`RedirectUri::as_str`]) is stored and compared: RFC 3986
/// §6.2.2 syntax-based normalisation as the `fluent-uri` crate applies it, that is,
/// percent-encoded unreserved characters decoded and the other percent-encodings in upper
/// case, scheme and host in lower case, IPv6 literals in RFC 5952 form, an empty or
/// default port dropped, and dot segments removed. `HTTPS://App.Example:443/a/./cb` is
/// stored, matched and redirected to as `https://app.example/a/cb`.
///
/// **Loopback** (RFC 8252 §7.3): an `http` URI whose host is a loopback address
/// ([`is_local_redirect`]) matches a request that differs only in its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri {
    uri: String,
    /// The host's class, for a URI with a host.
    host: Option<HostKind>,
    /// Whether the scheme is `http`.
    plain_http: bool,
    /// Everything after the authority (path and query), for `http` URIs without userinfo
    /// whose host is loopback or `localhost` (port-agnostic matching).
    rest: Option<String>,
}

/// What a URI's host is, as far as "does it go to this device" is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKind {
    /// A loopback address (`127.0.0.0/8`, `::1`, or an IPv4-mapped `127.0.0.0/8`), as
    /// the browser will connect to it.
    Loopback(std::net::IpAddr),
    /// The name `localhost`.
    Localhost,
    /// Anything else.
    Other,
}

/// Classifies a URI's host (as written in the URI: IPv6 literals in brackets): the one
/// place the library decides what is loopback.
///
/// An IP literal is read as such. A registered name is read the way a browser reads it
/// (the WHATWG host parser of the `url` crate), so every spelling a browser takes for an
/// IPv4 address counts: `127.1`, `127.0.0.2`, `2130706433`, `0x7f.1` are all loopback.
/// `localhost` (any case) is [`HostKind::Localhost`]; `localhost.` and
/// `127.0.0.1.example` are not.
pub(crate) fn classify_host(host: &str) -> HostKind {
    use std::net::IpAddr;
    let loopback_v6 = |v6: std::net::Ipv6Addr| {
        if v6.is_loopback() {
            Some(IpAddr::V6(v6))
        } else {
            v6.to_ipv4_mapped()
                .filter(|v4| v4.is_loopback())
                .map(IpAddr::V4)
        }
    };
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .and_then(loopback_v6)
        {
            Some(ip) => HostKind::Loopback(ip),
            None => HostKind::Other,
        };
    }
    match url::Host::parse(&host.to_ascii_lowercase()) {
        Ok(url::Host::Ipv4(v4)) if v4.is_loopback() => HostKind::Loopback(IpAddr::V4(v4)),
        Ok(url::Host::Ipv6(v6)) => match loopback_v6(v6) {
            Some(ip) => HostKind::Loopback(ip),
            None => HostKind::Other,
        },
        Ok(url::Host::Domain(d)) if d == "localhost" => HostKind::Localhost,
        _ => HostKind::Other,
    }
}

/// Schemes that are never a redirect URI, whatever the configuration.
const FORBIDDEN_SCHEMES: [&str; 4] = ["javascript", "data", "vbscript", "file"];

impl RedirectUri {
    /// Validates a redirect URI and normalises it (see [`RedirectUri`] for the rules).
    /// The error says why, quoting the string with escapes.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parsed = fluent_uri::Uri::parse(raw)
            .map_err(|e| format!("{raw:?} is not an RFC 3986 absolute URI: {e}"))?;
        if parsed.fragment().is_some() {
            return Err(format!("{raw:?} has a fragment (RFC 6749 section 3.1.2)"));
        }
        let uri = parsed.normalize();
        let scheme = uri.scheme().as_str();
        if FORBIDDEN_SCHEMES.contains(&scheme) {
            return Err(format!("{raw:?} uses a forbidden scheme"));
        }
        let web = matches!(scheme, "http" | "https");
        let plain_http = scheme == "http";
        let mut host = None;
        let mut rest = None;
        match uri.authority() {
            Some(auth) => {
                if auth.port_to_u16().is_err() {
                    return Err(format!(
                        "{raw:?} has a port that is not a number up to 65535"
                    ));
                }
                let h = auth.host();
                if web {
                    if h.is_empty() {
                        return Err(format!("{raw:?} has no host"));
                    }
                    if h.contains('%') {
                        return Err(format!("{raw:?} has a percent-encoded host"));
                    }
                    if url::Host::parse(h).is_err() {
                        return Err(format!("{raw:?} has a host no browser can use"));
                    }
                }
                let kind = classify_host(h);
                if plain_http && !auth.has_userinfo() && kind != HostKind::Other {
                    let after = &uri.as_str()[uri.as_str().len()
                        - uri.path().as_str().len()
                        - uri.query().map_or(0, |q| q.as_str().len() + 1)..];
                    rest = Some(after.to_owned());
                }
                host = Some(kind);
            }
            None if web => return Err(format!("{raw:?} has no host (it needs `//host`)")),
            None => {}
        }
        Ok(RedirectUri {
            uri: uri.into_string(),
            host,
            plain_http,
            rest,
        })
    }

    /// The URI in its normalised form, as stored, compared and redirected to.
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// Whether `requested` matches: equal after normalisation, except that `http` URIs to
    /// a loopback address (`http://127.0.0.1`, `http://127.1`, `http://[::1]`) may differ
    /// in port (RFC 8252 §7.3). A `requested` that is not a valid redirect URI matches
    /// nothing.
    pub fn matches(&self, requested: &str) -> bool {
        self.matches_with(requested, false)
    }

    /// [`RedirectUri::matches`], with `http://localhost` also allowed any port when
    /// `localhost_any_port` (an opt-in: native clients such as Claude Code register
    /// `http://localhost/callback`; RFC 8252 §8.3 prefers the IP literals).
    pub fn matches_with(&self, requested: &str, localhost_any_port: bool) -> bool {
        RedirectUri::parse(requested).is_ok_and(|r| self.matches_uri(&r, localhost_any_port))
    }

    /// [`RedirectUri::matches_with`] for an already parsed request.
    pub fn matches_uri(&self, requested: &RedirectUri, localhost_any_port: bool) -> bool {
        if self.uri == requested.uri {
            return true;
        }
        match (&self.rest, &requested.rest, self.host, requested.host) {
            (Some(a), Some(b), Some(ha), Some(hb)) if a == b && ha == hb => match ha {
                HostKind::Loopback(_) => true,
                HostKind::Localhost => localhost_any_port,
                HostKind::Other => false,
            },
            _ => false,
        }
    }

    /// Whether the URI is a plain-HTTP URI to a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.plain_http && matches!(self.host, Some(HostKind::Loopback(_)))
    }

    /// Whether the URI goes to this device: its host is a loopback address or
    /// `localhost`, whatever the scheme ([`is_local_redirect`]).
    pub fn is_local(&self) -> bool {
        matches!(self.host, Some(HostKind::Loopback(_) | HostKind::Localhost))
    }

    /// Whether the URI uses plain HTTP to a host other than loopback or `localhost`.
    fn is_insecure(&self) -> bool {
        self.plain_http && !self.is_local()
    }
}

/// Whether a redirect URI goes to this device (a loopback address in any spelling a
/// browser accepts, or `localhost`), for consent pages that warn about it; `false` for a
/// string that is not a valid redirect URI ([`RedirectUri::parse`]).
pub fn is_local_redirect(uri: &str) -> bool {
    RedirectUri::parse(uri).is_ok_and(|u| u.is_local())
}

/// The host a URL really goes to, as a consent page should show it: `host[:port]` as a
/// browser resolves it, in ASCII (an internationalised name stays in punycode, `xn--…`,
/// so a look-alike in another script, or one mixing scripts, cannot pass for a familiar
/// name; `127.1` shows as `127.0.0.1`); `scheme:` for a URI without host (a custom-scheme
/// redirect URI). A string no parser accepts is returned as it is (pages escape it).
pub fn display_host(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) => match u.host_str() {
            Some(h) if !h.is_empty() => match u.port() {
                Some(port) => format!("{h}:{port}"),
                None => h.to_owned(),
            },
            _ => format!("{}:", u.scheme()),
        },
        Err(_) => uri.to_owned(),
    }
}

/// Whether a redirect URI presented at the token endpoint is the one the authorization
/// request used (RFC 6749 §4.1.3): equal as sent, or after normalisation.
pub(crate) fn same_redirect_uri(presented: &str, recorded: &str) -> bool {
    presented == recorded
        || matches!(
            (RedirectUri::parse(presented), RedirectUri::parse(recorded)),
            (Ok(a), Ok(b)) if a.uri == b.uri
        )
}

/// Whether a redirect URI uses plain HTTP to a host other than a loopback address or
/// `localhost` (refused at grant time unless allowed: RFC 9700 §4.1, txoauth2's
/// `allowInsecureRedirectUri`). A string that is not a valid redirect URI counts as
/// insecure when it starts with `http:`.
pub fn is_insecure_redirect(uri: &str) -> bool {
    match RedirectUri::parse(uri) {
        Ok(u) => u.is_insecure(),
        Err(_) => uri
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("http:")),
    }
}

/// A registered client (RFC 6749 §2).
#[derive(Debug, Clone)]
pub struct Client {
    id: std::sync::Arc<str>,
    secret: Option<SecretDigest>,
    redirect_uris: Vec<RedirectUri>,
    grant_types: Vec<String>,
    scopes: Option<Scope>,
    allow_insecure_redirect: bool,
    may_introspect: bool,
    name: Option<String>,
    logo_uri: Option<String>,
    verified: bool,
    registered_at: Option<i64>,
    expires_at: Option<i64>,
    registration: Option<RegistrationInfo>,
    metadata_document: bool,
    access_token_format: Option<std::sync::Arc<str>>,
}

impl Client {
    /// Starts building a client with this id.
    pub fn builder(id: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            id: id.into(),
            secret: None,
            redirect_uris: Vec::new(),
            grant_types: Vec::new(),
            scopes: None,
            allow_insecure_redirect: false,
            may_introspect: false,
            name: None,
            logo_uri: None,
            verified: true,
            registered_at: None,
            expires_at: None,
            registration: None,
            metadata_document: false,
            access_token_format: None,
        }
    }

    /// The access-token format this client's tokens are issued in
    /// ([`crate::format::FormatRegistry`]), when it names one; `None`: the server-wide
    /// default.
    pub fn access_token_format(&self) -> Option<&str> {
        self.access_token_format.as_deref()
    }

    /// The `client_id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `client_id`, shared (records keep it without copying).
    pub fn shared_id(&self) -> std::sync::Arc<str> {
        self.id.clone()
    }

    /// A display name for consent pages (defaults to the id).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// Public or confidential.
    pub fn kind(&self) -> ClientKind {
        if self.secret.is_some() {
            ClientKind::Confidential
        } else {
            ClientKind::Public
        }
    }

    /// Whether the client is public.
    pub fn is_public(&self) -> bool {
        self.secret.is_none()
    }

    /// Checks a presented secret in constant time. Public clients have no secret: `false`.
    pub fn verify_secret(&self, presented: &str) -> bool {
        self.secret.as_ref().is_some_and(|d| d.verify(presented))
    }

    /// The registered redirect URIs.
    pub fn redirect_uris(&self) -> &[RedirectUri] {
        &self.redirect_uris
    }

    /// The registered redirect URI that `requested` matches, if any
    /// ([`RedirectUri::matches`]).
    pub fn matching_redirect_uri(&self, requested: &str) -> Option<&RedirectUri> {
        self.matching_redirect_uri_with(requested, false)
    }

    /// [`Client::matching_redirect_uri`] with the `http://localhost` any-port opt-in
    /// ([`RedirectUri::matches_with`]).
    pub fn matching_redirect_uri_with(
        &self,
        requested: &str,
        localhost_any_port: bool,
    ) -> Option<&RedirectUri> {
        let requested = RedirectUri::parse(requested).ok()?;
        self.matching_redirect(&requested, localhost_any_port)
    }

    /// [`Client::matching_redirect_uri_with`] for an already parsed request.
    pub fn matching_redirect(
        &self,
        requested: &RedirectUri,
        localhost_any_port: bool,
    ) -> Option<&RedirectUri> {
        self.redirect_uris
            .iter()
            .find(|u| u.matches_uri(requested, localhost_any_port))
    }

    /// Whether the client may use `grant_type` (`authorization_code`, `refresh_token`,
    /// `client_credentials`, `password`, `implicit`, or an extension URI).
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    /// The grant types the client may use.
    pub fn grant_types(&self) -> &[String] {
        &self.grant_types
    }

    /// The scopes the client may request; `None` means any scope the server accepts.
    pub fn allowed_scopes(&self) -> Option<&Scope> {
        self.scopes.as_ref()
    }

    /// Whether plain-HTTP, non-loopback redirect URIs may receive codes.
    pub fn allows_insecure_redirect(&self) -> bool {
        self.allow_insecure_redirect
    }

    /// Whether the client may call the introspection endpoint (RFC 7662).
    pub fn may_introspect(&self) -> bool {
        self.may_introspect
    }

    /// The client's logo for consent pages: an `https` URL (checked when the client is
    /// built), or `None`.
    pub fn logo_uri(&self) -> Option<&str> {
        self.logo_uri.as_deref()
    }

    /// Whether the operator vouches for the client's name and logo. Clients from the
    /// configuration are verified unless they say otherwise; a dynamically registered client
    /// is not. Consent pages mark unverified clients.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// When the client was registered through a
    /// [`ClientRegistry`](crate::storage::ClientRegistry), Unix seconds (RFC 7591
    /// `client_id_issued_at`); `None` for clients from the configuration.
    pub fn registered_at(&self) -> Option<i64> {
        self.registered_at
    }

    /// When the registration expires, Unix seconds, if it does. A dynamically registered
    /// client ([`Client::registration`]) gets one until its first use at the token endpoint,
    /// and client lookups
    /// ([`AuthorizationServer::client`](crate::server::AuthorizationServer::client)) treat
    /// it as unknown once it has passed (see [`crate::endpoint::register`]). Lookups do not
    /// refuse other clients for it, but a store's
    /// [`Purge::purge_expired`](crate::storage::Purge::purge_expired) deletes every stored
    /// client whose `expires_at` has passed.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// Whether this is a dynamically registered client whose registration expired at
    /// `now` (Unix seconds).
    pub fn registration_expired(&self, now: i64) -> bool {
        self.registration.is_some() && self.expires_at.is_some_and(|t| t <= now)
    }

    /// What dynamic client registration (RFC 7591) recorded for this client; `None` for
    /// clients not registered through [`crate::endpoint::register`].
    pub fn registration(&self) -> Option<&RegistrationInfo> {
        self.registration.as_ref()
    }

    /// Whether the client is described by a client ID metadata document: its `client_id`
    /// is the `https` URL the server fetched its metadata from
    /// ([`crate::client_metadata`]). Consent pages show that URL's host.
    pub fn is_metadata_document(&self) -> bool {
        self.metadata_document
    }

    /// The display name as set, without the fallback to the id.
    pub(crate) fn explicit_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The secret's digest (the stored form of a confidential client).
    pub(crate) fn secret_digest(&self) -> Option<&SecretDigest> {
        self.secret.as_ref()
    }

    /// The same client registered at `at`.
    pub(crate) fn with_registered_at(mut self, at: Option<i64>) -> Self {
        self.registered_at = at;
        self
    }

    /// The same client expiring at `at`.
    pub(crate) fn with_expires_at(mut self, at: Option<i64>) -> Self {
        self.expires_at = at;
        self
    }
}

/// Whether `uri` is acceptable as a client logo: an absolute `https` URL with a host and
/// without credentials (no `data:`, `javascript:` or plain-HTTP images on a consent page).
pub fn is_acceptable_logo_uri(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "https"
            && u.host_str().is_some_and(|h| !h.is_empty())
            && u.username().is_empty()
            && u.password().is_none()
    })
}

/// Builds a [`Client`], validating it.
#[derive(Debug)]
pub struct ClientBuilder {
    id: String,
    secret: Option<SecretDigest>,
    redirect_uris: Vec<String>,
    grant_types: Vec<String>,
    scopes: Option<Vec<String>>,
    allow_insecure_redirect: bool,
    may_introspect: bool,
    name: Option<String>,
    logo_uri: Option<String>,
    verified: bool,
    registered_at: Option<i64>,
    expires_at: Option<i64>,
    registration: Option<RegistrationInfo>,
    metadata_document: bool,
    access_token_format: Option<String>,
}

impl ClientBuilder {
    /// Issues this client's access tokens in the format registered as `name`
    /// ([`Client::access_token_format`]; a name the server does not have is refused at
    /// launch for a configured client, and at issuance otherwise).
    pub fn access_token_format(mut self, name: impl Into<String>) -> Self {
        self.access_token_format = Some(name.into());
        self
    }

    /// Makes the client confidential with this secret (kept only as a digest).
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(SecretDigest::of(secret));
        self
    }

    /// Makes the client confidential with an already-digested secret.
    pub fn secret_digest(mut self, digest: SecretDigest) -> Self {
        self.secret = Some(digest);
        self
    }

    /// Adds a redirect URI.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Adds a grant type the client may use.
    pub fn grant_type(mut self, grant: impl Into<String>) -> Self {
        self.grant_types.push(grant.into());
        self
    }

    /// Sets the scopes the client may request (space-separated or one per call of
    /// [`ClientBuilder::scope`]).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        let s: String = scope.into();
        self.scopes
            .get_or_insert_with(Vec::new)
            .extend(s.split(' ').filter(|t| !t.is_empty()).map(str::to_owned));
        self
    }

    /// Allows plain-HTTP, non-loopback redirect URIs for this client (development only).
    pub fn allow_insecure_redirect(mut self, allow: bool) -> Self {
        self.allow_insecure_redirect = allow;
        self
    }

    /// Lets the client call the introspection endpoint.
    pub fn may_introspect(mut self, allow: bool) -> Self {
        self.may_introspect = allow;
        self
    }

    /// Sets a display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the logo shown on consent pages; it must be an `https` URL
    /// (see [`is_acceptable_logo_uri`]), or [`ClientBuilder::build`] fails.
    pub fn logo_uri(mut self, uri: impl Into<String>) -> Self {
        self.logo_uri = Some(uri.into());
        self
    }

    /// Whether the operator vouches for the client (default `true`); `false` makes consent
    /// pages mark it as unverified, as for a dynamically registered client.
    pub fn verified(mut self, verified: bool) -> Self {
        self.verified = verified;
        self
    }

    /// Sets [`Client::registered_at`] (Unix seconds). A client created through the server's
    /// registry without one gets the server's current time.
    pub fn registered_at(mut self, at: i64) -> Self {
        self.registered_at = Some(at);
        self
    }

    /// Sets [`Client::expires_at`] (Unix seconds).
    pub fn expires_at(mut self, at: i64) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Marks the client as described by a client ID metadata document
    /// ([`Client::is_metadata_document`]).
    pub fn metadata_document(mut self, yes: bool) -> Self {
        self.metadata_document = yes;
        self
    }

    /// Records what dynamic client registration (RFC 7591) registered
    /// ([`Client::registration`]).
    pub fn registration(mut self, info: RegistrationInfo) -> Self {
        self.registration = Some(info);
        self
    }

    /// Validates and builds the client.
    pub fn build(self) -> Result<Client, ConfigError> {
        let err = |reason: String| ConfigError::Client {
            client: self.id.clone(),
            reason,
        };
        if self.id.is_empty() {
            return Err(err("client id is empty".into()));
        }
        if !self.id.chars().all(|c| (' '..='~').contains(&c)) {
            return Err(err("client id must be printable ASCII".into()));
        }
        let mut uris = Vec::with_capacity(self.redirect_uris.len());
        for raw in &self.redirect_uris {
            uris.push(RedirectUri::parse(raw).map_err(|e| err(format!("redirect URI {e}")))?);
        }
        for g in &self.grant_types {
            if g.is_empty() || g.contains(' ') {
                return Err(err(format!("invalid grant type `{g}`")));
            }
        }
        if self
            .grant_types
            .iter()
            .any(|g| crate::grant_type::GrantType::new(g.clone()).uses_redirect())
            && uris.is_empty()
        {
            return Err(err(
                "a client using authorization_code needs at least one redirect URI".into(),
            ));
        }
        if self.secret.is_none()
            && self
                .grant_types
                .iter()
                .any(|g| crate::grant_type::GrantType::CLIENT_CREDENTIALS == g.as_str())
        {
            return Err(err(
                "client_credentials needs a confidential client (set a secret)".into(),
            ));
        }
        let scopes = match self.scopes {
            None => None,
            Some(v) => Some(Scope::from_tokens(&v).map_err(|e| err(format!("scopes: {e}")))?),
        };
        if let Some(logo) = &self.logo_uri {
            if !is_acceptable_logo_uri(logo) {
                return Err(err(format!(
                    "logo_uri `{logo}` must be an https URL with a host"
                )));
            }
        }
        Ok(Client {
            id: self.id.into(),
            secret: self.secret,
            redirect_uris: uris,
            grant_types: self.grant_types,
            scopes,
            allow_insecure_redirect: self.allow_insecure_redirect,
            may_introspect: self.may_introspect,
            name: self.name,
            logo_uri: self.logo_uri,
            verified: self.verified,
            registered_at: self.registered_at,
            expires_at: self.expires_at,
            registration: self.registration,
            metadata_document: self.metadata_document,
            access_token_format: self.access_token_format.map(Into::into),
        })
    }
}

/// How the client presented its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Post,
    /// `none`: a public client identified by `client_id`.
    None,
}

impl AuthMethod {
    /// The RFC 8414 / RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Basic => "client_secret_basic",
            AuthMethod::Post => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

/// What registration recorded for a client ([`Client::registration`]), persisted with it
/// in its [`ClientRecord`](crate::storage::ClientRecord).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RegistrationInfo {
    /// The SHA-256 of the registration access token, 64 hex digits.
    pub token_sha256: String,
    /// The registered `token_endpoint_auth_method`.
    pub token_endpoint_auth_method: String,
    /// The registered `scope`, if any (a restriction only under
    /// [`RegistrationConfig::restrict_scope`](crate::config::RegistrationConfig::restrict_scope)).
    pub scope: Option<String>,
    /// The registered `application_type` (`web` or `native`), if one was sent.
    pub application_type: Option<String>,
}

impl std::fmt::Debug for RegistrationInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationInfo")
            .field("token_sha256", &"<redacted>")
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("scope", &self.scope)
            .field("application_type", &self.application_type)
            .finish()
    }
}

impl RegistrationInfo {
    /// The record of a registration: the registration access token's SHA-256 in hex
    /// ([`SecretDigest::to_hex`]), the `token_endpoint_auth_method`, the registered `scope`.
    pub fn new(
        token_sha256: impl Into<String>,
        token_endpoint_auth_method: impl Into<String>,
        scope: Option<String>,
    ) -> Self {
        RegistrationInfo {
            token_sha256: token_sha256.into(),
            token_endpoint_auth_method: token_endpoint_auth_method.into(),
            scope,
            application_type: None,
        }
    }

    /// The same record with the registered `application_type`.
    pub fn with_application_type(mut self, application_type: Option<String>) -> Self {
        self.application_type = application_type;
        self
    }

    /// Whether `presented` is the registration access token, compared in constant time.
    pub fn verify_token(&self, presented: &str) -> bool {
        SecretDigest::from_hex(&self.token_sha256).is_some_and(|d| d.verify(presented))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment_rfc6749_3_1_2() {
        assert!(RedirectUri::parse("https://app.example/cb").is_ok());
        assert!(RedirectUri::parse("com.example.app:/callback").is_ok());
        assert!(RedirectUri::parse("custom://callback").is_ok());
        assert!(RedirectUri::parse("/relative").is_err());
        assert!(RedirectUri::parse("https://app.example/cb#frag").is_err());
        assert!(RedirectUri::parse("https://app.example/cb#").is_err());
        let e = Client::builder("c")
            .redirect_uri("nope")
            .grant_type("authorization_code")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("client `c`"), "{e}");
    }

    #[test]
    fn redirect_uris_are_strict_rfc3986_never_repaired() {
        for bad in [
            "https://a.example/c b",
            "https://a.example\\@evil.example/cb",
            "https:cb",
            "https:///cb",
            "https://a.example/cb\u{0}",
            "https://a.example/\tcb",
            "https://a.example/cb\n",
            "https://a.example/\u{7f}",
            "https://b\u{fc}cher.example/cb",
            "https://%61%2Fb.example/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:99999/cb",
            "https://1.2.3.4.5/cb",
            "javascript:alert(1)",
            "HTTP:cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn redirect_uris_are_kept_in_rfc3986_6_2_2_normal_form() {
        let u = RedirectUri::parse("HTTPS://App.Example:443/a/./b/../cb?x=%7e%2f").unwrap();
        assert_eq!(u.as_str(), "https://app.example/a/cb?x=~%2F");
        assert!(u.matches("https://APP.example/a/cb?x=~%2f"));
        assert_eq!(
            RedirectUri::parse("http://[0:0:0:0:0:0:0:1]:/cb")
                .unwrap()
                .as_str(),
            "http://[::1]/cb"
        );
    }

    #[test]
    fn redirect_match_is_exact_after_normalisation() {
        let u = RedirectUri::parse("https://app.example/cb").unwrap();
        assert!(u.matches("https://app.example/cb"));
        assert!(!u.matches("https://app.example/cb/"));
        assert!(!u.matches("https://app.example/cb?x=1"));
        assert!(!u.matches("https://app.example:8443/cb"));
        assert!(!u.matches("https://app.example/c b"));
    }

    #[test]
    fn loopback_redirect_may_differ_in_port_rfc8252_7_3() {
        let u = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert!(u.matches("http://127.0.0.1:51004/cb"));
        assert!(!u.matches("http://127.0.0.1:51004/other"));
        assert!(!u.matches("http://127.0.0.1:65536/cb"));
        assert!(!u.matches("http://127.0.0.1:99999/cb"));
        assert!(!u.matches("http://127.0.0.2:5000/cb"));
        assert!(!u.matches("https://127.0.0.1:5000/cb"));
        let v6 = RedirectUri::parse("http://[::1]:9000/cb").unwrap();
        assert!(v6.matches("http://[::1]:1234/cb"));
        assert!(!v6.matches("http://127.0.0.1:1234/cb"));
        let notloop = RedirectUri::parse("http://127.0.0.1.evil.example/cb").unwrap();
        assert!(!notloop.is_loopback());
        assert!(!notloop.matches("http://127.0.0.1.evil.example:81/cb"));
    }

    #[test]
    fn every_spelling_of_127_0_0_0_8_is_loopback() {
        for (registered, requested) in [
            ("http://127.1/cb", "http://127.1:5000/cb"),
            ("http://127.1/cb", "http://127.0.0.1:5000/cb"),
            ("http://127.0.0.2/cb", "http://127.0.0.2:5000/cb"),
            ("http://2130706433/cb", "http://127.0.0.1:5000/cb"),
            ("http://0x7f.1/cb", "http://127.1:5000/cb"),
            ("http://[::ffff:127.0.0.1]/cb", "http://127.0.0.1:5000/cb"),
        ] {
            let u = RedirectUri::parse(registered).unwrap();
            assert!(u.is_loopback(), "{registered}");
            assert!(u.matches(requested), "{registered} vs {requested}");
            assert!(!is_insecure_redirect(registered), "{registered}");
            assert!(is_local_redirect(registered), "{registered}");
        }
        assert_eq!(classify_host("LOCALHOST"), HostKind::Localhost);
        assert_eq!(classify_host("localhost."), HostKind::Other);
        assert_eq!(classify_host("128.0.0.1"), HostKind::Other);
        assert_eq!(classify_host("[::2]"), HostKind::Other);
    }

    #[test]
    fn localhost_any_port_is_an_opt_in() {
        let u = RedirectUri::parse("http://localhost/callback").unwrap();
        assert!(!u.is_loopback());
        assert!(u.is_local());
        assert!(!u.matches("http://localhost:8123/callback"));
        assert!(u.matches_with("http://LOCALHOST:8123/callback", true));
        assert!(!u.matches_with("http://127.0.0.1:8123/callback", true));
    }

    #[test]
    fn display_host_is_where_the_browser_goes() {
        assert_eq!(display_host("https://app.example/cb"), "app.example");
        assert_eq!(display_host("http://127.0.0.1:9000/cb"), "127.0.0.1:9000");
        assert_eq!(display_host("http://127.1:9000/cb"), "127.0.0.1:9000");
        assert_eq!(display_host("com.example.app:/cb"), "com.example.app:");
        assert_eq!(
            display_host("https://xn--pple-43d.example/cb"),
            "xn--pple-43d.example"
        );
    }

    #[test]
    fn the_token_endpoint_compares_normalised_redirect_uris() {
        assert!(same_redirect_uri(
            "https://app.example/cb",
            "https://app.example/cb"
        ));
        assert!(same_redirect_uri(
            "HTTPS://APP.example:443/cb",
            "https://app.example/cb"
        ));
        assert!(!same_redirect_uri(
            "https://app.example/cb/",
            "https://app.example/cb"
        ));
        assert!(!same_redirect_uri(
            "https://app.example/c b",
            "https://app.example/c%20b"
        ));
    }

    #[test]
    fn secrets_are_hashed_and_verified() {
        let c = Client::builder("svc")
            .secret("s3cret")
            .grant_type("client_credentials")
            .build()
            .unwrap();
        assert_eq!(c.kind(), ClientKind::Confidential);
        assert!(c.verify_secret("s3cret"));
        assert!(!c.verify_secret("s3cre"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let hex = "b1b3773a05c0ed0176787a4f1574ff0075f7521e"; // too short
        assert!(SecretDigest::from_hex(hex).is_none());
        let d = SecretDigest::of("x");
        let hex: String = d.0.iter().map(|b| format!("{b:02x}")).collect();
        assert!(SecretDigest::from_hex(&hex).unwrap().verify("x"));
    }

    #[test]
    fn public_client_cannot_use_client_credentials() {
        assert!(Client::builder("p")
            .grant_type("client_credentials")
            .build()
            .is_err());
    }

    #[test]
    fn insecure_redirect_detection() {
        assert!(is_insecure_redirect("http://example.com/cb"));
        assert!(
            is_insecure_redirect("HTTP://example.com/cb"),
            "the scheme is case-insensitive"
        );
        assert!(!is_insecure_redirect("http://127.0.0.1:9000/cb"));
        assert!(!is_insecure_redirect("http://127.1:9000/cb"));
        assert!(!is_insecure_redirect("http://[::1]/cb"));
        assert!(!is_insecure_redirect("https://example.com/cb"));
        assert!(!is_insecure_redirect("com.example:/cb"));
        assert!(!is_insecure_redirect("http://localhost:8080/cb"));
        assert!(is_insecure_redirect("http://localhost.evil.example/cb"));
        assert!(is_insecure_redirect("http://localhostx/cb"));
    }
}
