//! [`HttpFetcher`]: client ID metadata documents over HTTPS, with the SSRF limits of the
//! module documentation.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

use super::address::special_use;
use super::{
    cache_max_age, ClientMetadataConfig, ClientMetadataFetcher, FetchError, FetchLimits,
    FetchedDocument,
};
use crate::error::ConfigError;

/// Fetches documents over HTTPS with `reqwest`: no redirects, no proxy, only public
/// addresses (unless the debug override), the size and time limits, and the configured
/// extra root certificates.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    allow_special_use_addresses: bool,
}

/// Resolves names and keeps only the addresses the policy allows, so the connection is made
/// to a checked address (a name that resolves differently a moment later gains nothing).
struct CheckedResolver {
    allow_special_use_addresses: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_special_use_addresses;
        Box::pin(async move {
            let addrs = resolve_checked(name.as_str(), allow)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses of `host` the policy allows; an error when none (or any) is refused.
async fn resolve_checked(host: &str, allow: bool) -> Result<Vec<SocketAddr>, FetchError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 443))
        .await
        .map_err(|e| FetchError::Network(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(FetchError::Network(format!("{host} has no address")));
    }
    if !allow {
        if let Some((ip, why)) = addrs
            .iter()
            .find_map(|a| special_use(a.ip()).map(|why| (a.ip(), why)))
        {
            return Err(FetchError::Refused(format!(
                "{host} resolves to {ip}, a special-use address: {why}"
            )));
        }
    }
    Ok(addrs)
}

impl HttpFetcher {
    /// A fetcher for this policy; reads the PEM files of
    /// [`ClientMetadataConfig::root_certificates`].
    pub fn new(config: &ClientMetadataConfig) -> Result<Self, ConfigError> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(true)
            .timeout(std::time::Duration::from_secs(config.fetch_timeout))
            .user_agent(concat!("twisted-oauth2/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(CheckedResolver {
                allow_special_use_addresses: config.allow_special_use_addresses,
            }));
        for path in &config.root_certificates {
            let err = |reason: String| ConfigError::Setting {
                key: "client_metadata.root_certificates",
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| err(format!("cannot read {path}: {e}")))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| err(format!("{path} is not a PEM certificate: {e}")))?;
            if certs.is_empty() {
                return Err(err(format!("{path} holds no certificate")));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b.build().map_err(|e| ConfigError::Setting {
            key: "client_metadata",
            reason: format!("cannot build the HTTPS client: {e}"),
        })?;
        Ok(HttpFetcher {
            client,
            allow_special_use_addresses: config.allow_special_use_addresses,
        })
    }
}

#[async_trait]
impl ClientMetadataFetcher for HttpFetcher {
    async fn fetch(
        &self,
        url: &url::Url,
        limits: &FetchLimits,
    ) -> Result<FetchedDocument, FetchError> {
        let allow = self.allow_special_use_addresses && limits.allow_special_use_addresses;
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(why) = literal.filter(|_| !allow).and_then(special_use) {
            return Err(FetchError::Refused(format!(
                "the address is a special-use one: {why}"
            )));
        }
        let work = async {
            if let Some(url::Host::Domain(d)) = url.host() {
                // A clear refusal before connecting (within the time limit); the resolver
                // checks again.
                resolve_checked(d, allow).await?;
            }
            let mut resp = self
                .client
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        FetchError::Timeout
                    } else {
                        FetchError::Network(e.without_url().to_string())
                    }
                })?;
            let status = resp.status();
            if status.is_redirection() {
                return Err(FetchError::Redirect);
            }
            if status.as_u16() != 200 {
                return Err(FetchError::Status(status.as_u16()));
            }
            let headers = resp.headers();
            let served = served_as(
                headers
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
            );
            if served == Served::Other {
                return Err(FetchError::NotJson);
            }
            let max_age = headers
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .and_then(cache_max_age);
            if resp
                .content_length()
                .is_some_and(|n| n > limits.max_size as u64)
            {
                return Err(FetchError::TooLarge(limits.max_size));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| {
                if e.is_timeout() {
                    FetchError::Timeout
                } else {
                    FetchError::Network(e.without_url().to_string())
                }
            })? {
                if body.len() + chunk.len() > limits.max_size {
                    return Err(FetchError::TooLarge(limits.max_size));
                }
                body.extend_from_slice(&chunk);
            }
            // Static hosts that know no better (raw GitHub among them) serve `.json` files
            // as `text/plain`: such a body is accepted when it is a JSON object, and only
            // then (an HTML or text page is not taken for a document).
            if served == Served::PlainText && !is_json_object(&body) {
                return Err(FetchError::NotJson);
            }
            Ok(FetchedDocument::new(body, max_age))
        };
        tokio::time::timeout(limits.timeout, work)
            .await
            .map_err(|_| FetchError::Timeout)?
    }
}

/// How a document was served, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    /// `application/json` or a `+json` type (RFC 6839), such as `application/ld+json`.
    Json,
    /// `text/plain`: accepted only when the body is a JSON object.
    PlainText,
    /// Anything else, or no `Content-Type`: refused.
    Other,
}

/// The class of a `Content-Type` value (parameters such as `charset` are ignored).
fn served_as(content_type: Option<&str>) -> Served {
    let Some(essence) = content_type.and_then(|v| v.split(';').next()) else {
        return Served::Other;
    };
    let essence = essence.trim().to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", "json")) => Served::Json,
        Some(("application", sub)) if sub.len() > 5 && sub.ends_with("+json") => Served::Json,
        Some(("text", "plain")) => Served::PlainText,
        _ => Served::Other,
    }
}

/// Whether `body` is one JSON object (what a client ID metadata document is).
fn is_json_object(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_plus_json_types_are_json_whatever_their_parameters() {
        for t in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/ld+json",
            " application/vnd.example+json ;q=1",
        ] {
            assert_eq!(served_as(Some(t)), Served::Json, "{t}");
        }
    }

    #[test]
    fn text_plain_is_plain_text_and_everything_else_is_refused() {
        assert_eq!(
            served_as(Some("text/plain; charset=utf-8")),
            Served::PlainText
        );
        for t in [
            "text/html",
            "text/json",
            "application/+json",
            "application/octet-stream",
            "application/jsonx",
            "",
        ] {
            assert_eq!(served_as(Some(t)), Served::Other, "{t}");
        }
        assert_eq!(served_as(None), Served::Other);
    }

    #[test]
    fn only_a_json_object_passes_as_plain_text() {
        assert!(is_json_object(
            br#" {"client_id": "https://a.example/c.json"} "#
        ));
        for body in [&b"[]"[..], b"\"x\"", b"<html></html>", b"{", b"", b"{} {}"] {
            assert!(!is_json_object(body), "{}", String::from_utf8_lossy(body));
        }
    }
}
