//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document; the Model
//! Context Protocol's preferred client registration since its 2025-11-25 revision).
//!
//! A client that has not registered uses as its `client_id` an `https` URL with a path; the
//! server fetches that URL and reads the client's metadata (RFC 7591 §2 members) from the
//! JSON document found there. With [`ClientMetadataConfig::enabled`] the server advertises
//! `client_id_metadata_document_supported` and resolves such client ids where a
//! metadata-document client can be: at the authorization endpoint (and consent), and at the
//! token and revocation endpoints when the client identifies itself by `client_id` alone.
//!
//! Where no such client can be, nothing is fetched: these clients are public, so a URL
//! `client_id` presented with a secret (HTTP Basic, even with an empty password, or
//! `client_secret`) fails client authentication at once (`401 invalid_client`), as does any
//! URL `client_id` at the introspection endpoint; `/register/<client_id>` never resolves
//! one (registered ids are never URLs), and
//! [`AuthorizationServer::stored_client`](crate::AuthorizationServer::stored_client) looks
//! in the stores only.
//!
//! What is refused, so that fetching a URL a stranger chose cannot be turned against the
//! server or its network:
//! - a `client_id` that is not `https`, has no path beyond `/`, has a fragment, user
//!   information or `.`/`..` segments, or is longer than 2048 bytes;
//! - a host outside [`ClientMetadataConfig::allowed_hosts`] (when set);
//! - any address that is not global unicast ([`is_public_address`]): every block of the
//!   IANA IPv4 and IPv6 special-purpose address registries (loopback, private, link-local
//!   with the cloud metadata services such as `169.254.169.254`, unique-local, shared,
//!   documentation, benchmarking, AS112, ...), multicast, IPv6 outside `2000::/3`, and the
//!   IPv6 forms that embed an IPv4 address (IPv4-mapped and NAT64 `64:ff9b::/96` ones are
//!   judged as their IPv4 address; IPv4-compatible, IPv4-translated, 6to4 and Teredo ones
//!   are refused), for the URL's literal address and for every address its name resolves to
//!   (the connection uses only the checked addresses, so DNS rebinding gains nothing) —
//!   unless the debug override [`ClientMetadataConfig::allow_special_use_addresses`] is on;
//! - redirects (none is followed), any status but 200, a type other than JSON
//!   (`application/json` or a `+json` type; `text/plain`, as static hosts such as raw GitHub
//!   serve `.json` files, only when the body is a JSON object), a body over
//!   [`ClientMetadataConfig::max_document_size`], a fetch slower than
//!   [`ClientMetadataConfig::fetch_timeout`];
//! - a document whose `client_id` does not name its URL, that carries a `client_secret` or
//!   `client_secret_expires_at`, or asks for another `token_endpoint_auth_method` than
//!   `none` (these clients are public), or whose metadata the registration policy refuses
//!   (redirect URI kinds, grant types, scopes: [`RegistrationConfig`](crate::config::RegistrationConfig)).
//!
//! Why a fetch failed (name resolution, a special-use address, network errors, status,
//! type, size, time) goes to the server log only; the caller is told `invalid_client` "the
//! client metadata document could not be retrieved", whatever the cause. Why a fetched
//! document is refused (its content, which its publisher controls) is told, as
//! `invalid_request`.
//!
//! # Cache
//!
//! The cache holds one entry per normalised URL (as [`url::Url`] serialises it: scheme and
//! host lower-case, the default port dropped), so `https://Example.com/c` and
//! `https://example.com:443/c` cause one fetch. The draft still compares the `client_id` a
//! client presents with its document's `client_id` by simple string comparison: a client
//! is found only under the exact spelling its document gives (which must itself normalise
//! to the document's URL); other spellings of the same URL are refused (`invalid_request`)
//! from the cache, without another fetch.
//!
//! Documents are cached per their `Cache-Control: max-age`, clamped to
//! [[`ClientMetadataConfig::min_cache_lifetime`], [`ClientMetadataConfig::max_cache_lifetime`]];
//! a failed fetch is remembered for `min_cache_lifetime` too, so a URL cannot make the
//! server fetch more than once a minute; at most
//! [`ClientMetadataConfig::max_cached_documents`] are kept. A `client_id` whose form or host
//! is refused is answered without a fetch and is not cached.
//!
//! # Fetch limits
//!
//! A lookup that misses the cache fetches only within these bounds; beyond any of them it
//! is answered `temporarily_unavailable` without fetching, and the refusal is not cached (it
//! says nothing about the document):
//! - [`ClientMetadataConfig::max_concurrent_fetches`] in flight in total, and
//!   [`ClientMetadataConfig::max_concurrent_fetches_per_host`] (default a quarter of those)
//!   for documents on one host, so slow documents on one host do not starve the others:
//!   `503`;
//! - [`ClientMetadataConfig::caller_fetches_per_minute`] per caller (its address, IPv6 by
//!   /64, given by the HTTP layer: [`RequestContext::client_ip`](crate::endpoint::RequestContext::client_ip)):
//!   `429` with `Retry-After`; a lookup whose caller is not known (such as
//!   [`AuthorizationServer::client`](crate::AuthorizationServer::client) called by an
//!   extension) is not subject to it;
//! - [`ClientMetadataConfig::host_fetches_per_minute`] per host, whoever asks: `503`.
//!
//! The two rate limits (`governor`) track at most
//! [`ClientMetadataConfig::rate_limit_max_keys`] callers and hosts each; while a table is
//! full after idle entries are forgotten, every caller (or host) shares one bucket, so a
//! flood of addresses is limited together instead of growing the table.
//!
//! The fetching is a trait, [`ClientMetadataFetcher`]: the HTTP one (`HttpFetcher`, cargo
//! feature `client-metadata`) or [`StaticDocuments`] (documents given in code, for tests and
//! air-gapped deployments, no network). A client found this way is public, unverified, and
//! marked [`Client::is_metadata_document`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::client::Client;
use crate::config::ServerConfig;
use crate::error::{ErrorCode, OAuthError};
use crate::scope::Scope;

/// The longest `client_id` URL fetched.
pub const MAX_CLIENT_ID_URL_LENGTH: usize = 2048;

pub use crate::config::ClientMetadataConfig;

/// Whether `client_id` has the form of a client ID metadata document URL (an `https` URL);
/// such ids are resolved by fetching when the feature is on. Checked before any store.
pub fn is_metadata_document_url(client_id: &str) -> bool {
    client_id.len() > 8
        && client_id
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
}

/// Checks a `client_id` URL's form (the module documentation lists the rules).
pub fn parse_client_id_url(client_id: &str) -> Result<url::Url, &'static str> {
    if client_id.len() > MAX_CLIENT_ID_URL_LENGTH {
        return Err("the client_id URL is too long");
    }
    if client_id.contains('#') {
        return Err("the client_id URL must not have a fragment");
    }
    let url = url::Url::parse(client_id).map_err(|_| "the client_id is not a URL")?;
    if url.scheme() != "https" {
        return Err("the client_id URL must use https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the client_id URL must not carry user information");
    }
    // The parsed URL has `.` and `..` resolved: compare with what was sent.
    let path_as_sent = client_id
        .splitn(4, '/')
        .nth(3)
        .map(|p| p.split('?').next().unwrap_or(""))
        .unwrap_or("");
    if path_as_sent.split('/').any(|seg| {
        seg == "."
            || seg == ".."
            || seg.eq_ignore_ascii_case("%2e")
            || seg.eq_ignore_ascii_case("%2e%2e")
    }) {
        return Err("the client_id URL must not have . or .. path segments");
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err("the client_id URL must have a path");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the client_id URL has no host");
    }
    Ok(url)
}

/// Whether `ip` is a global unicast address a document may be fetched from: outside every
/// block of the IANA IPv4 and IPv6 special-purpose address registries and multicast, and
/// for IPv6 inside `2000::/3`; an IPv4-mapped or NAT64 well-known (`64:ff9b::/96`) address
/// is judged as the IPv4 address it carries, and the other forms that embed one
/// (IPv4-compatible, IPv4-translated, 6to4, Teredo) are refused.
pub fn is_public_address(ip: IpAddr) -> bool {
    address::special_use(ip).is_none()
}

/// What a fetch may do: the limits of [`ClientMetadataConfig`], as a fetcher sees them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchLimits {
    /// The largest body accepted, in bytes.
    pub max_size: usize,
    /// The longest the fetch may take.
    pub timeout: std::time::Duration,
    /// Whether special-use addresses may be contacted (the debug override).
    pub allow_special_use_addresses: bool,
}

impl FetchLimits {
    /// The limits a configuration sets.
    pub fn from_config(config: &ClientMetadataConfig) -> Self {
        FetchLimits {
            max_size: config.max_document_size,
            timeout: std::time::Duration::from_secs(config.fetch_timeout),
            allow_special_use_addresses: config.allow_special_use_addresses,
        }
    }
}

/// A fetched document: its body and, from `Cache-Control`, how long it may be cached.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchedDocument {
    /// The JSON body.
    pub body: Vec<u8>,
    /// `max-age` in seconds; `Some(0)` for `no-store`/`no-cache`; `None` when absent.
    pub max_age: Option<u64>,
}

impl FetchedDocument {
    /// A document with this body and cache lifetime.
    pub fn new(body: Vec<u8>, max_age: Option<u64>) -> Self {
        FetchedDocument { body, max_age }
    }
}

/// Why a document could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The address is not a public one (SSRF protection), or the host is not allowed.
    #[error("refused to fetch: {0}")]
    Refused(String),
    /// The answer was a redirect (none is followed).
    #[error("the document URL answered with a redirect")]
    Redirect,
    /// The answer's status was not 200.
    #[error("the document URL answered {0}")]
    Status(u16),
    /// The answer was not served as JSON: its `Content-Type` was neither `application/json`,
    /// a `+json` type, nor `text/plain` with a body that is a JSON object.
    #[error("the document is not served as JSON (application/json, or text/plain holding a JSON object)")]
    NotJson,
    /// The body exceeded the size limit.
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    /// The fetch took longer than the limit.
    #[error("the fetch timed out")]
    Timeout,
    /// The connection failed.
    #[error("the fetch failed: {0}")]
    Network(String),
    /// The fetcher has no document for this URL ([`StaticDocuments`]).
    #[error("no document is known for this URL")]
    NotFound,
}

/// Fetches client ID metadata documents. `HttpFetcher` (feature `client-metadata`) fetches
/// over HTTPS; [`StaticDocuments`] answers from documents given in code.
#[async_trait]
pub trait ClientMetadataFetcher: Send + Sync + 'static {
    /// Fetches the document at `url` (already checked by [`parse_client_id_url`] and the
    /// host allow-list) within `limits`.
    async fn fetch(
        &self,
        url: &url::Url,
        limits: &FetchLimits,
    ) -> Result<FetchedDocument, FetchError>;
}

/// Documents given in code, by URL: no network. For tests, air-gapped deployments, and
/// well-known clients pinned by the operator.
#[derive(Debug, Default, Clone)]
pub struct StaticDocuments {
    documents: HashMap<String, Vec<u8>>,
}

impl StaticDocuments {
    /// No documents.
    pub fn new() -> Self {
        StaticDocuments::default()
    }

    /// Adds the document served for `client_id`.
    pub fn with(mut self, client_id: impl Into<String>, document: &serde_json::Value) -> Self {
        self.documents
            .insert(client_id.into(), document.to_string().into_bytes());
        self
    }
}

#[async_trait]
impl ClientMetadataFetcher for StaticDocuments {
    async fn fetch(
        &self,
        url: &url::Url,
        limits: &FetchLimits,
    ) -> Result<FetchedDocument, FetchError> {
        let body = self
            .documents
            .get(url.as_str())
            .ok_or(FetchError::NotFound)?;
        if body.len() > limits.max_size {
            return Err(FetchError::TooLarge(limits.max_size));
        }
        Ok(FetchedDocument::new(body.clone(), None))
    }
}

/// The seconds of `max-age` in a `Cache-Control` value (`no-store`/`no-cache`: 0).
pub fn cache_max_age(cache_control: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in cache_control.split(',') {
        let d = directive.trim();
        let (name, value) = d.split_once('=').unwrap_or((d, ""));
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = value.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age
}

pub(crate) mod address;
mod limits;
pub(crate) mod rfc7591;

#[cfg(feature = "client-metadata")]
mod http;
#[cfg(feature = "client-metadata")]
#[cfg_attr(docsrs, doc(cfg(feature = "client-metadata")))]
pub use http::HttpFetcher;

/// A cached answer for one normalised URL.
#[derive(Clone)]
enum Cached {
    /// The document's client; its id is the document's `client_id`.
    Client(Arc<Client>),
    /// The document could not be used.
    Failed(Failure),
}

/// Why a document could not be used, as the caller is told.
#[derive(Clone)]
enum Failure {
    /// It was not retrieved; the cause is in the server log only.
    Fetch,
    /// It was retrieved and refused, for this reason (about the document's content).
    Document(String),
}

struct Entry {
    value: Cached,
    until: i64,
}

/// Resolves metadata-document client ids: checks, fetches, validates, caches. The server
/// holds one when [`ClientMetadataConfig::enabled`].
pub struct ClientMetadataResolver {
    config: ClientMetadataConfig,
    fetcher: Arc<dyn ClientMetadataFetcher>,
    cache: Mutex<HashMap<String, Entry>>,
    limiter: limits::FetchLimiter,
}

impl std::fmt::Debug for ClientMetadataResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientMetadataResolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn invalid_client_id(reason: &str) -> OAuthError {
    OAuthError::with_description(
        ErrorCode::InvalidRequest,
        format!("the client metadata document cannot be used: {reason}"),
    )
}

/// The one answer to a document that could not be retrieved, whatever the cause (which
/// is logged): callers learn nothing of the server's network or name resolution.
fn not_retrieved() -> OAuthError {
    OAuthError::invalid_client("the client metadata document could not be retrieved")
}

impl ClientMetadataResolver {
    /// A resolver with this policy and fetcher.
    pub fn new(config: ClientMetadataConfig, fetcher: Arc<dyn ClientMetadataFetcher>) -> Self {
        ClientMetadataResolver {
            limiter: limits::FetchLimiter::new(&config),
            config,
            fetcher,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The policy.
    pub fn config(&self) -> &ClientMetadataConfig {
        &self.config
    }

    /// How many documents (and failed fetches) are cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn limits(&self) -> FetchLimits {
        FetchLimits::from_config(&self.config)
    }

    fn cached_answer(&self, key: &str, now: i64) -> Option<Cached> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(key)
            .filter(|e| e.until > now)
            .map(|e| e.value.clone())
    }

    fn remember(&self, key: &str, value: Cached, until: i64, now: i64) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= self.config.max_cached_documents && !cache.contains_key(key) {
            cache.retain(|_, e| e.until > now);
            if cache.len() >= self.config.max_cached_documents {
                // Drop the entry closest to expiry.
                if let Some(k) = cache
                    .iter()
                    .min_by_key(|(_, e)| e.until)
                    .map(|(k, _)| k.clone())
                {
                    cache.remove(&k);
                }
            }
        }
        cache.insert(key.to_owned(), Entry { value, until });
    }

    /// The client `client_id` (an `https` URL) describes, from the cache or fetched on
    /// behalf of `caller` (its address, for the per-caller limit; `None` when unknown, and
    /// then only the per-host limits apply).
    ///
    /// `invalid_request` with the reason when the URL or the document is refused,
    /// `invalid_client` when the document could not be retrieved (the cause is logged, not
    /// told), `503`/`429 temporarily_unavailable` over a fetch limit (nothing fetched or
    /// cached).
    pub async fn client(
        &self,
        server_config: &ServerConfig,
        scopes_supported: Option<&Scope>,
        client_id: &str,
        caller: Option<IpAddr>,
        now: i64,
    ) -> Result<Arc<Client>, OAuthError> {
        let url = parse_client_id_url(client_id).map_err(invalid_client_id)?;
        let host = url.host_str().unwrap_or_default();
        if !self.config.allowed_hosts.is_empty()
            && !self
                .config
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
        {
            return Err(invalid_client_id(&format!(
                "the host {host} is not allowed"
            )));
        }
        // One entry per normalised URL, however the client_id spells it.
        let answer = match self.cached_answer(url.as_str(), now) {
            Some(a) => a,
            None => {
                self.fetch(server_config, scopes_supported, &url, caller, now)
                    .await?
            }
        };
        match answer {
            // The draft compares the client_id with its document's by simple string
            // comparison: another spelling of the same URL is not that client.
            Cached::Client(c) if c.id() == client_id => Ok(c),
            Cached::Client(_) => Err(invalid_client_id(
                "the client_id differs from the client_id of its document",
            )),
            Cached::Failed(Failure::Fetch) => Err(not_retrieved()),
            Cached::Failed(Failure::Document(reason)) => Err(invalid_client_id(&reason)),
        }
    }

    /// Fetches, checks and caches the document at `url`, within the fetch limits.
    async fn fetch(
        &self,
        server_config: &ServerConfig,
        scopes_supported: Option<&Scope>,
        url: &url::Url,
        caller: Option<IpAddr>,
        now: i64,
    ) -> Result<Cached, OAuthError> {
        let host = url.host_str().unwrap_or_default();
        let _slot = self
            .limiter
            .admit(host, caller)
            .map_err(|r| self.over_limit(r, host))?;
        let answer = match self.resolve(server_config, scopes_supported, url).await {
            Ok((client, max_age)) => {
                let ttl = max_age.unwrap_or(300).clamp(
                    self.config.min_cache_lifetime,
                    self.config.max_cache_lifetime,
                );
                (Cached::Client(Arc::new(client)), ttl)
            }
            Err(failure) => (Cached::Failed(failure), self.config.min_cache_lifetime),
        };
        self.remember(
            url.as_str(),
            answer.0.clone(),
            now.saturating_add(answer.1 as i64),
            now,
        );
        Ok(answer.0)
    }

    /// The answer to a lookup refused by a fetch limit, logged.
    fn over_limit(&self, refusal: limits::Refusal, host: &str) -> OAuthError {
        use limits::Refusal;
        let host = crate::error::printable(host);
        let busy = || {
            OAuthError::with_description(
                ErrorCode::TemporarilyUnavailable,
                "too many client metadata documents are being fetched; try again shortly",
            )
            .with_status(503)
        };
        match refusal {
            Refusal::Slots => {
                log::warn!(
                    "twisted-oauth2: {} client metadata documents are being fetched \
                     (client_metadata.max_concurrent_fetches): refusing more until one ends",
                    self.config.max_concurrent_fetches
                );
                busy()
            }
            Refusal::HostSlots => {
                log::warn!(
                    "twisted-oauth2: {} client metadata documents are being fetched from {host} \
                     (client_metadata.max_concurrent_fetches_per_host): refusing more from it \
                     until one ends",
                    self.config.fetches_per_host()
                );
                busy()
            }
            Refusal::Host => {
                log::info!(
                    "twisted-oauth2: client metadata documents of {host} are fetched more than \
                     {} times a minute (client_metadata.host_fetches_per_minute): refused",
                    self.config.host_fetches_per_minute
                );
                busy()
            }
            Refusal::Caller(wait) => {
                log::info!(
                    "twisted-oauth2: a caller asks for more than {} client metadata document \
                     fetches a minute (client_metadata.caller_fetches_per_minute): refused",
                    self.config.caller_fetches_per_minute
                );
                OAuthError::with_description(
                    ErrorCode::TemporarilyUnavailable,
                    "too many client metadata documents fetched for this caller; retry later",
                )
                .with_status(429)
                .with_header("Retry-After", wait.to_string())
            }
        }
    }

    /// Fetches and checks the document at `url`; a failure is logged here.
    async fn resolve(
        &self,
        server_config: &ServerConfig,
        scopes_supported: Option<&Scope>,
        url: &url::Url,
    ) -> Result<(Client, Option<u64>), Failure> {
        let shown = crate::error::printable(url.as_str());
        let doc = match self.fetcher.fetch(url, &self.limits()).await {
            Ok(d) if d.body.len() > self.config.max_document_size => {
                Err(FetchError::TooLarge(self.config.max_document_size))
            }
            other => other,
        };
        let doc = doc.map_err(|e| {
            if matches!(e, FetchError::Refused(_)) {
                log::warn!("twisted-oauth2: client metadata document `{shown}` not fetched: {e}");
            } else {
                log::info!(
                    "twisted-oauth2: client metadata document `{shown}` could not be retrieved: {e}"
                );
            }
            Failure::Fetch
        })?;
        let checked = serde_json::from_slice::<Value>(&doc.body)
            .map_err(|_| "the document is not JSON".to_owned())
            .and_then(|value| match value {
                Value::Object(map) => document_client(server_config, scopes_supported, url, &map),
                _ => Err("the document is not a JSON object".to_owned()),
            });
        match checked {
            Ok(client) => Ok((client, doc.max_age)),
            Err(reason) => {
                log::info!("twisted-oauth2: client metadata document `{shown}` refused: {reason}");
                Err(Failure::Document(reason))
            }
        }
    }
}

/// The client the document fetched from `url` describes, or why it is refused. Its id is
/// the document's `client_id`, which must be a valid client_id URL naming `url`.
fn document_client(
    server_config: &ServerConfig,
    scopes_supported: Option<&Scope>,
    url: &url::Url,
    m: &Map<String, Value>,
) -> Result<Client, String> {
    let client_id = match m.get("client_id") {
        Some(Value::String(s))
            if parse_client_id_url(s).is_ok_and(|u| u.as_str() == url.as_str()) =>
        {
            s.as_str()
        }
        _ => return Err("the document's client_id is not its URL".into()),
    };
    for secret in ["client_secret", "client_secret_expires_at"] {
        if m.contains_key(secret) {
            return Err(format!("the document must not carry `{secret}`"));
        }
    }
    match m.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "none" => {}
        Some(_) => {
            return Err("the document asks for a token_endpoint_auth_method other than none".into())
        }
    }
    if !m.contains_key("redirect_uris") {
        return Err("the document has no redirect_uris".into());
    }
    let meta = rfc7591::validate_with(server_config, scopes_supported, m)
        .map_err(|e| e.description().unwrap_or("invalid metadata").to_owned())?;
    let mut b = meta.apply(
        Client::builder(client_id.to_owned())
            .verified(false)
            .metadata_document(true),
        server_config.registration.restrict_scope,
    );
    if let Some(Value::String(logo)) = m.get("logo_uri") {
        if crate::client::is_acceptable_logo_uri(logo) {
            b = b.logo_uri(logo.clone());
        }
    }
    b.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_urls_must_be_https_with_a_path_and_no_fragment_credentials_or_dots() {
        assert!(parse_client_id_url("https://app.example/client.json").is_ok());
        assert!(parse_client_id_url("https://app.example/a/b?x=1").is_ok());
        for bad in [
            "http://app.example/client.json",
            "https://app.example",
            "https://app.example/",
            "https://app.example/c#f",
            "https://user:pw@app.example/c",
            "https://app.example/a/../c",
            "https://app.example/./c",
            "https://app.example/a/%2e%2e/c",
            "not a url",
        ] {
            assert!(parse_client_id_url(bad).is_err(), "{bad}");
        }
        let long = format!(
            "https://app.example/{}",
            "a".repeat(MAX_CLIENT_ID_URL_LENGTH)
        );
        assert!(parse_client_id_url(&long).is_err());
    }

    #[test]
    fn any_client_id_is_classified_without_panicking() {
        assert!(is_metadata_document_url("HTTPS://app.example/c.json"));
        assert!(!is_metadata_document_url("https://"));
        assert!(!is_metadata_document_url("http://app.example/c.json"));
        // Multi-byte characters around byte 8.
        for id in ["aééééé", "ééééé", "https:/é/x", "日本語のクライアント"] {
            assert!(!is_metadata_document_url(id), "{id}");
        }
    }

    #[test]
    fn special_use_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn cache_control_max_age_and_no_store() {
        assert_eq!(cache_max_age("public, max-age=600"), Some(600));
        assert_eq!(cache_max_age("max-age=\"30\""), Some(30));
        assert_eq!(cache_max_age("no-store"), Some(0));
        assert_eq!(cache_max_age("max-age=60, no-cache"), Some(0));
        assert_eq!(cache_max_age("private"), None);
        assert_eq!(cache_max_age("max-age=x"), None);
    }

    #[test]
    fn the_debug_override_needs_the_insecure_debug_flag() {
        let c = ClientMetadataConfig {
            allow_special_use_addresses: true,
            ..Default::default()
        };
        assert!(c.validate(false).is_err());
        assert!(c.validate(true).is_ok());
        let c = ClientMetadataConfig {
            min_cache_lifetime: 10,
            max_cache_lifetime: 5,
            ..Default::default()
        };
        assert!(c.validate(false).is_err());
    }
}
