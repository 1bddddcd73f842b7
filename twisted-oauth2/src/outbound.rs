//! Outbound HTTP: one `reqwest` client shared by every use, each request under its own
//! [`Policy`].
//!
//! The server fetches documents from other hosts for two kinds of reasons, which trust
//! them very differently:
//!
//! - **URLs strangers name** (client ID metadata documents): [`Policy::public_only`], so a
//!   request cannot be aimed at the server's own network (SSRF). Names are resolved by the
//!   client's own resolver, which refuses special-use addresses *at connection time*, so a
//!   name that resolves to a public address for a check and to `10.0.0.1` a moment later
//!   gains nothing.
//! - **URLs the operator configured** (an external issuer, its `jwks_uri`, its introspection
//!   endpoint): [`Policy::configured`], any address (an internal Keycloak must be
//!   reachable), HTTPS unless the debug override.
//!
//! A host fetched once under a configured policy is remembered as *internal*: the resolver
//! lets its name resolve to any address, and a public-only request to that host is refused
//! before connecting, so a pooled connection to an internal address is never used for a
//! stranger's URL. Every request: no redirect followed, no proxy, the policy's time limit
//! over the whole exchange, the body read up to the policy's size limit and no further.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::client_metadata::address::special_use;
use crate::client_metadata::cache_max_age;

/// The most hosts remembered as internal (an issuer and its endpoints need a few).
const MAX_INTERNAL_HOSTS: usize = 64;

/// Which addresses a request may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Addresses {
    /// Public addresses only (no loopback, private, link-local or other special-use ones).
    PublicOnly,
    /// Any address: for URLs the operator configured.
    Any,
}

/// What one request may do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Policy {
    /// The addresses it may reach.
    pub addresses: Addresses,
    /// Whether the URL must be `https` (off only under a debug override).
    pub require_https: bool,
    /// The largest body read, bytes.
    pub max_size: usize,
    /// The longest the whole exchange may take.
    pub timeout: Duration,
}

impl Policy {
    /// For URLs strangers name: public addresses, HTTPS, these limits.
    pub fn public_only(max_size: usize, timeout: Duration) -> Self {
        Policy {
            addresses: Addresses::PublicOnly,
            require_https: true,
            max_size,
            timeout,
        }
    }

    /// For URLs the operator configured: any address, HTTPS, these limits.
    pub fn configured(max_size: usize, timeout: Duration) -> Self {
        Policy {
            addresses: Addresses::Any,
            require_https: true,
            max_size,
            timeout,
        }
    }

    /// Sets whether plain `http` is refused (turn off only for development).
    pub fn with_require_https(mut self, require_https: bool) -> Self {
        self.require_https = require_https;
        self
    }

    /// Sets which addresses may be reached.
    pub fn with_addresses(mut self, addresses: Addresses) -> Self {
        self.addresses = addresses;
        self
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The policy forbids this URL or address (SSRF protection, plain HTTP).
    #[error("refused: {0}")]
    Refused(String),
    /// The answer was a redirect (none is followed).
    #[error("the URL answered with a redirect")]
    Redirect,
    /// The body exceeded the policy's size limit.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The exchange took longer than the policy's time limit.
    #[error("the request timed out")]
    Timeout,
    /// The connection failed.
    #[error("the request failed: {0}")]
    Network(String),
}

/// An answer: its status, the headers a caller may need, and the body (within the limit).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `Content-Type`, when present and readable.
    pub content_type: Option<String>,
    /// `max-age` of `Cache-Control` in seconds (`no-store`/`no-cache`: 0).
    pub max_age: Option<u64>,
    /// `Retry-After` in seconds, when given as a number.
    pub retry_after: Option<u64>,
    /// The body.
    pub body: Vec<u8>,
}

/// The shared outbound client (cheap to clone). Build one with [`Outbound::new`] and pass
/// clones to every use.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    internal: Arc<RwLock<HashSet<String>>>,
    allow_special_use_addresses: bool,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field(
                "allow_special_use_addresses",
                &self.allow_special_use_addresses,
            )
            .finish_non_exhaustive()
    }
}

/// Resolves names and keeps only the addresses the policy allows, so the connection is made
/// to a checked address.
struct CheckedResolver {
    internal: Arc<RwLock<HashSet<String>>>,
    allow_special_use_addresses: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let allow = self.allow_special_use_addresses
            || self.internal.read().is_ok_and(|set| set.contains(&host));
        Box::pin(async move {
            let addrs = resolve_checked(&host, allow)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses of `host` the policy allows; an error when none (or any) is refused.
pub(crate) async fn resolve_checked(
    host: &str,
    allow_special_use: bool,
) -> Result<Vec<SocketAddr>, OutboundError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 443))
        .await
        .map_err(|e| OutboundError::Network(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(OutboundError::Network(format!("{host} has no address")));
    }
    if !allow_special_use {
        if let Some((ip, why)) = addrs
            .iter()
            .find_map(|a| special_use(a.ip()).map(|why| (a.ip(), why)))
        {
            return Err(OutboundError::Refused(format!(
                "{host} resolves to {ip}, a special-use address: {why}"
            )));
        }
    }
    Ok(addrs)
}

/// Refuses `url` when its host is a special-use address or resolves to one (within
/// `timeout`): a clear refusal before connecting (the resolver checks again).
pub(crate) async fn check_public(url: &url::Url, timeout: Duration) -> Result<(), OutboundError> {
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        Some(url::Host::Domain(d)) => {
            return tokio::time::timeout(timeout, resolve_checked(d, false))
                .await
                .map_err(|_| OutboundError::Timeout)?
                .map(|_| ());
        }
        None => return Err(OutboundError::Refused("the URL has no host".into())),
    };
    match special_use(literal) {
        Some(why) => Err(OutboundError::Refused(format!(
            "the address is a special-use one: {why}"
        ))),
        None => Ok(()),
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(String);

fn network(e: reqwest::Error) -> OutboundError {
    if e.is_timeout() {
        OutboundError::Timeout
    } else {
        OutboundError::Network(e.without_url().to_string())
    }
}

impl Outbound {
    /// A client trusting the system's roots plus `extra_roots` (PEM bundles, already
    /// read). `allow_special_use_addresses` is the debug override letting every host resolve
    /// to special-use addresses (development against loopback only).
    pub fn new(
        extra_roots: &[reqwest::Certificate],
        allow_special_use_addresses: bool,
    ) -> Result<Self, BuildError> {
        let internal = Arc::new(RwLock::new(HashSet::new()));
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("twisted-oauth2/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(CheckedResolver {
                internal: internal.clone(),
                allow_special_use_addresses,
            }));
        for c in extra_roots {
            b = b.add_root_certificate(c.clone());
        }
        let client = b
            .build()
            .map_err(|e| BuildError(format!("cannot build the HTTPS client: {e}")))?;
        Ok(Outbound {
            client,
            internal,
            allow_special_use_addresses,
        })
    }

    /// Whether the debug override lets every host reach special-use addresses.
    pub fn allows_special_use_addresses(&self) -> bool {
        self.allow_special_use_addresses
    }

    /// `GET url` with `Accept: accept`.
    pub async fn get(
        &self,
        url: &url::Url,
        accept: &str,
        policy: &Policy,
    ) -> Result<Answer, OutboundError> {
        self.admit(url, policy).await?;
        let req = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, accept);
        self.exchange(req, policy).await
    }

    /// `POST url` with a form body (`application/x-www-form-urlencoded`) and HTTP Basic
    /// client authentication when `basic` is given (RFC 6749 §2.3.1: both parts
    /// form-urlencoded first).
    pub async fn post_form(
        &self,
        url: &url::Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        policy: &Policy,
    ) -> Result<Answer, OutboundError> {
        self.admit(url, policy).await?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .client
            .post(url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some((id, secret)) = basic {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(id), Some(enc(secret)));
        }
        self.exchange(req, policy).await
    }

    /// Checks `url` against the policy before anything is sent.
    async fn admit(&self, url: &url::Url, policy: &Policy) -> Result<(), OutboundError> {
        match url.scheme() {
            "https" => {}
            "http" if !policy.require_https => {}
            other => {
                return Err(OutboundError::Refused(format!(
                    "the scheme {other} is not allowed (https required)"
                )))
            }
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(OutboundError::Refused("the URL has no host".into())),
        };
        match policy.addresses {
            Addresses::Any => {
                let mut set = self
                    .internal
                    .write()
                    .map_err(|_| OutboundError::Network("internal host list poisoned".into()))?;
                if !set.contains(&host) {
                    if set.len() >= MAX_INTERNAL_HOSTS {
                        return Err(OutboundError::Refused(format!(
                            "more than {MAX_INTERNAL_HOSTS} configured hosts"
                        )));
                    }
                    set.insert(host);
                }
            }
            Addresses::PublicOnly => {
                if self.internal.read().is_ok_and(|set| set.contains(&host)) {
                    return Err(OutboundError::Refused(format!(
                        "{host} is a configured internal host"
                    )));
                }
                if !self.allow_special_use_addresses {
                    check_public(url, policy.timeout).await?;
                }
            }
        }
        Ok(())
    }

    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        policy: &Policy,
    ) -> Result<Answer, OutboundError> {
        let work = async {
            let mut resp = req.send().await.map_err(network)?;
            let status = resp.status();
            if status.is_redirection() {
                return Err(OutboundError::Redirect);
            }
            let headers = resp.headers();
            let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
            let content_type = text(reqwest::header::CONTENT_TYPE).map(str::to_owned);
            let max_age = text(reqwest::header::CACHE_CONTROL).and_then(cache_max_age);
            let retry_after =
                text(reqwest::header::RETRY_AFTER).and_then(|v| v.trim().parse::<u64>().ok());
            if resp
                .content_length()
                .is_some_and(|n| n > policy.max_size as u64)
            {
                return Err(OutboundError::TooLarge(policy.max_size));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(network)? {
                if body.len() + chunk.len() > policy.max_size {
                    return Err(OutboundError::TooLarge(policy.max_size));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Answer {
                status: status.as_u16(),
                content_type,
                max_age,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(policy.timeout, work)
            .await
            .map_err(|_| OutboundError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn outbound() -> Outbound {
        Outbound::new(&[], false).unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A one-shot plain-HTTP server on loopback answering `reply` to every connection.
    async fn serve(reply: &'static [u8]) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(reply).await;
            }
        });
        port
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[tokio::test]
    async fn plain_http_is_refused_unless_the_policy_allows_it() {
        let port = serve(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
        let o = outbound();
        let u = url(&format!("http://127.0.0.1:{port}/x"));
        let configured = Policy::configured(1024, secs(5));
        assert!(matches!(
            o.get(&u, "application/json", &configured).await,
            Err(OutboundError::Refused(_))
        ));
        let a = o
            .get(
                &u,
                "application/json",
                &configured.with_require_https(false),
            )
            .await
            .unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"{}"[..]));
    }

    #[tokio::test]
    async fn public_only_refuses_loopback_and_hosts_configured_as_internal() {
        let port = serve(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
        let o = outbound();
        let public = Policy::public_only(1024, secs(5)).with_require_https(false);
        for u in [
            format!("http://127.0.0.1:{port}/x"),
            format!("http://[::1]:{port}/x"),
            format!("http://localhost:{port}/x"),
        ] {
            assert!(
                matches!(
                    o.get(&url(&u), "*/*", &public).await,
                    Err(OutboundError::Refused(_))
                ),
                "{u}"
            );
        }
        // The same host under the configured policy is reached, and from then on a
        // public-only request to it is refused before connecting even with the override.
        let configured = Policy::configured(1024, secs(5)).with_require_https(false);
        let u = url(&format!("http://localhost:{port}/x"));
        assert_eq!(o.get(&u, "*/*", &configured).await.unwrap().status, 200);
        let lax = Outbound::new(&[], true).unwrap();
        assert_eq!(lax.get(&u, "*/*", &public).await.unwrap().status, 200);
        assert_eq!(lax.get(&u, "*/*", &configured).await.unwrap().status, 200);
        assert!(matches!(
            lax.get(&u, "*/*", &public).await,
            Err(OutboundError::Refused(_))
        ));
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_the_size_limit_holds() {
        let port = serve(b"HTTP/1.1 302 Found\r\nlocation: /y\r\ncontent-length: 0\r\n\r\n").await;
        let p = Policy::configured(16, secs(5)).with_require_https(false);
        let o = outbound();
        assert_eq!(
            o.get(&url(&format!("http://127.0.0.1:{port}/")), "*/*", &p)
                .await
                .unwrap_err(),
            OutboundError::Redirect
        );
        let port = serve(b"HTTP/1.1 200 OK\r\ncontent-length: 17\r\n\r\n01234567890123456").await;
        assert_eq!(
            o.get(&url(&format!("http://127.0.0.1:{port}/")), "*/*", &p)
                .await
                .unwrap_err(),
            OutboundError::TooLarge(16)
        );
        // No length announced: the limit holds while reading.
        let port = serve(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n11\r\n01234567890123456\r\n0\r\n\r\n",
        )
        .await;
        assert_eq!(
            o.get(&url(&format!("http://127.0.0.1:{port}/")), "*/*", &p)
                .await
                .unwrap_err(),
            OutboundError::TooLarge(16)
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_within_the_policy() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s); // accept, never answer
            }
        });
        let p = Policy::configured(16, Duration::from_millis(200)).with_require_https(false);
        assert_eq!(
            outbound()
                .get(&url(&format!("http://127.0.0.1:{port}/")), "*/*", &p)
                .await
                .unwrap_err(),
            OutboundError::Timeout
        );
    }

    #[tokio::test]
    async fn answers_carry_cache_lifetime_and_retry_after() {
        let port = serve(
            b"HTTP/1.1 503 Service Unavailable\r\ncache-control: max-age=60\r\nretry-after: 7\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
        )
        .await;
        let p = Policy::configured(16, secs(5)).with_require_https(false);
        let a = outbound()
            .post_form(
                &url(&format!("http://127.0.0.1:{port}/")),
                &[("token", "t")],
                Some(("id", "s:ecret")),
                &p,
            )
            .await
            .unwrap();
        assert_eq!(a.status, 503);
        assert_eq!((a.max_age, a.retry_after), (Some(60), Some(7)));
        assert_eq!(a.content_type.as_deref(), Some("application/json"));
    }
}
