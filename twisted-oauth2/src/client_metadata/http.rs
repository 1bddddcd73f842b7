//! [`HttpFetcher`]: client ID metadata documents over HTTPS, with the SSRF limits of the
//! module documentation, on the shared [`Outbound`] client.

use async_trait::async_trait;

use super::{
    ClientMetadataConfig, ClientMetadataFetcher, FetchError, FetchLimits, FetchedDocument,
};
use crate::error::ConfigError;
use crate::outbound::{check_public, Outbound, OutboundError, Policy};

/// Fetches documents over HTTPS on an [`Outbound`] client under
/// [`Policy::public_only`]: no redirects, no proxy, only public addresses (unless the
/// debug override), the size and time limits, and the configured extra root certificates.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    outbound: Outbound,
}

impl From<OutboundError> for FetchError {
    fn from(e: OutboundError) -> Self {
        match e {
            OutboundError::Refused(why) => FetchError::Refused(why),
            OutboundError::Redirect => FetchError::Redirect,
            OutboundError::TooLarge(n) => FetchError::TooLarge(n),
            OutboundError::Timeout => FetchError::Timeout,
            OutboundError::Network(why) => FetchError::Network(why),
        }
    }
}

impl HttpFetcher {
    /// A fetcher for this policy on a client of its own; reads the PEM files of
    /// [`ClientMetadataConfig::root_certificates`].
    pub fn new(config: &ClientMetadataConfig) -> Result<Self, ConfigError> {
        let mut roots = Vec::new();
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
            roots.extend(certs);
        }
        let outbound = Outbound::new(&roots, config.allow_special_use_addresses).map_err(|e| {
            ConfigError::Setting {
                key: "client_metadata",
                reason: e.to_string(),
            }
        })?;
        Ok(HttpFetcher { outbound })
    }

    /// A fetcher on a shared client (its debug override applies).
    pub fn with_outbound(outbound: Outbound) -> Self {
        HttpFetcher { outbound }
    }
}

#[async_trait]
impl ClientMetadataFetcher for HttpFetcher {
    async fn fetch(
        &self,
        url: &url::Url,
        limits: &FetchLimits,
    ) -> Result<FetchedDocument, FetchError> {
        if self.outbound.allows_special_use_addresses() && !limits.allow_special_use_addresses {
            // The client allows special-use addresses but these limits do not.
            check_public(url, limits.timeout).await?;
        }
        let policy = Policy::public_only(limits.max_size, limits.timeout);
        let answer = self.outbound.get(url, "application/json", &policy).await?;
        if answer.status != 200 {
            return Err(FetchError::Status(answer.status));
        }
        let served = served_as(answer.content_type.as_deref());
        if served == Served::Other {
            return Err(FetchError::NotJson);
        }
        // Static hosts that know no better (raw GitHub among them) serve `.json` files
        // as `text/plain`: such a body is accepted when it is a JSON object, and only
        // then (an HTML or text page is not taken for a document).
        if served == Served::PlainText && !is_json_object(&answer.body) {
            return Err(FetchError::NotJson);
        }
        Ok(FetchedDocument::new(answer.body, answer.max_age))
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
