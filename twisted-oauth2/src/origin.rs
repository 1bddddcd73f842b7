//! `Origin` validation for protected routes (the MCP Streamable HTTP transport's DNS
//! rebinding rule: a server MUST validate `Origin` on every request and answer `403` when it
//! is present and not allowed).
//!
//! A page on `http://evil.example` whose name an attacker re-points at a server on the
//! user's machine or network can reach it with the browser, as a "same-origin" request to
//! the attacker's name; the browser still sends `Origin: http://evil.example`. CORS does not
//! help: its headers decide what the page may *read*, not whether the request reaches the
//! handler. So a checked route refuses any request whose `Origin` is present and not one of:
//!
//! - the server's own origins: the issuer's and those of its RFC 8707 resources;
//! - [`ServerConfig::allowed_origins`]: exact origins (`https://app.example`) or a loopback
//!   host with any port (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`, for
//!   tools such as the MCP Inspector that run on a local port);
//! - the exact origins listed in [`ServerConfig::cors_allowed_origins`] (an application that
//!   lets a site call it cross-origin trusts that site). Its `"*"` does **not** count: it
//!   would allow every site, which is what the check is for.
//!
//! A request without `Origin` (curl, SDK clients, server-side code) passes: only browsers
//! send it, and they always do on cross-origin and non-`GET` requests. `Origin: null`
//! (sandboxed frames, some redirects) is refused.
//!
//! ```
//! use twisted_oauth2::origin::OriginPolicy;
//! use twisted_oauth2::ServerConfig;
//!
//! let config = ServerConfig {
//!     issuer: "https://as.example".into(),
//!     allowed_origins: vec!["http://localhost:*".into(), "https://app.example".into()],
//!     ..Default::default()
//! };
//! let policy = OriginPolicy::new(&config, ["https://as.example"]).unwrap();
//! assert!(policy.allows("https://as.example"));
//! assert!(policy.allows("https://APP.example:443"));
//! assert!(policy.allows("http://localhost:6274"));
//! assert!(!policy.allows("http://evil.example"));
//! assert!(!policy.allows("null"));
//! ```
//!
//! [`ServerConfig::allowed_origins`]: crate::config::ServerConfig::allowed_origins
//! [`ServerConfig::cors_allowed_origins`]: crate::config::ServerConfig::cors_allowed_origins

use crate::config::ServerConfig;
use crate::error::ConfigError;

/// The most origins a policy holds (configuration input, bounded like every input).
const MAX_ORIGINS: usize = 256;

/// Which `Origin` values a checked route accepts. Built once at launch; [`Self::allows`]
/// parses only the request's header.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Serialized origins (`scheme://host[:port]`, lower-case, default port dropped).
    exact: Vec<String>,
    /// `(scheme, host)` pairs allowed with any port.
    any_port: Vec<(String, String)>,
}

/// The serialized origin of `s` (an origin or a URL), or `None` when it has none.
fn serialize(s: &str) -> Option<String> {
    let url = url::Url::parse(s.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.origin() {
        o @ url::Origin::Tuple(..) => Some(o.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

impl OriginPolicy {
    /// The policy of `config`, with the server's own origins: those of `own` (the issuer,
    /// the resource identifiers). An entry of `allowed_origins` that is no origin, or `*`, is
    /// a configuration error naming it.
    pub fn new<'a>(
        config: &ServerConfig,
        own: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ConfigError> {
        let mut p = OriginPolicy::default();
        let err = |entry: &str, reason: &str| ConfigError::Setting {
            key: "allowed_origins",
            reason: format!("`{}`: {reason}", crate::error::printable(entry)),
        };
        if config.allowed_origins.len() > MAX_ORIGINS {
            return Err(err("…", "too many entries"));
        }
        for entry in &config.allowed_origins {
            let e = entry.trim();
            if e == "*" {
                return Err(err(
                    e,
                    "would let every site reach the checked routes; list the origins (a loopback \
                     host may take any port: `http://localhost:*`)",
                ));
            }
            if let Some(base) = e.strip_suffix(":*") {
                let url = url::Url::parse(base).map_err(|_| err(e, "is not an origin"))?;
                let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
                let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
                if !loopback || url.path() != "/" || url.port().is_some() {
                    return Err(err(
                        e,
                        "only a loopback host (localhost, 127.0.0.1, [::1]) may take any port",
                    ));
                }
                p.any_port.push((url.scheme().to_owned(), host));
                continue;
            }
            let origin = serialize(e).ok_or_else(|| err(e, "is not an http(s) origin"))?;
            if !p.exact.contains(&origin) {
                p.exact.push(origin);
            }
        }
        let own: Vec<String> = own.into_iter().map(str::to_owned).collect();
        let own_and_cors = own
            .iter()
            .chain(&config.cors_allowed_origins)
            .take(MAX_ORIGINS);
        for o in own_and_cors.filter_map(|s| serialize(s)) {
            if !p.exact.contains(&o) {
                p.exact.push(o);
            }
        }
        Ok(p)
    }

    /// The allowed origins in words, for the launch banner: the exact origins, then each
    /// loopback host allowed with any port (`http://localhost:*`).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.exact.clone();
        parts.extend(self.any_port.iter().map(|(s, h)| format!("{s}://{h}:*")));
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Whether a request carrying `Origin: origin` may reach a checked route.
    pub fn allows(&self, origin: &str) -> bool {
        if origin.len() > 2048 {
            return false;
        }
        let Some(o) = serialize(origin) else {
            return false;
        };
        if self.exact.contains(&o) {
            return true;
        }
        url::Url::parse(&o).is_ok_and(|u| {
            let host = u.host_str().unwrap_or_default();
            self.any_port
                .iter()
                .any(|(s, h)| s == u.scheme() && h == host)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], cors: &[&str]) -> Result<OriginPolicy, ConfigError> {
        let config = ServerConfig {
            issuer: "http://127.0.0.1:8000".into(),
            allowed_origins: allowed.iter().map(|s| s.to_string()).collect(),
            cors_allowed_origins: cors.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        OriginPolicy::new(
            &config,
            ["http://127.0.0.1:8000", "https://api.example/mcp"],
        )
    }

    #[test]
    fn the_servers_own_origins_are_always_allowed() {
        let p = policy(&[], &["*"]).unwrap();
        assert!(p.allows("http://127.0.0.1:8000"));
        assert!(p.allows("https://api.example"));
        assert!(p.allows("HTTPS://API.EXAMPLE:443"));
        assert!(!p.allows("http://127.0.0.1:8001"));
        assert!(
            !p.allows("http://evil.example"),
            "cors `*` allows no site here"
        );
    }

    #[test]
    fn listed_origins_and_loopback_any_port() {
        let p = policy(
            &["http://localhost:*", "https://app.example"],
            &["https://cors.example"],
        )
        .unwrap();
        assert!(p.allows("http://localhost:6274"));
        assert!(p.allows("http://localhost"));
        assert!(
            !p.allows("https://localhost:6274"),
            "scheme is part of the origin"
        );
        assert!(!p.allows("http://localhost.evil.example:6274"));
        assert!(p.allows("https://app.example"));
        assert!(p.allows("https://cors.example"));
        for bad in [
            "null",
            "",
            "garbage",
            "file:///etc",
            "https://app.example.evil.example",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_or_a_non_loopback_any_port_is_a_configuration_error() {
        for bad in [
            "*",
            "https://app.example:*",
            "not an origin",
            "ftp://x.example",
        ] {
            let e = policy(&[bad], &[]).unwrap_err().to_string();
            assert!(e.contains("allowed_origins"), "{bad}: {e}");
        }
    }
}
