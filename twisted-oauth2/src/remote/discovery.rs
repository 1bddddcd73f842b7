//! The external issuer's metadata: RFC 8414 authorization server metadata, else OpenID
//! Connect discovery.

use super::RemoteError;
use crate::outbound::{Outbound, Policy};

/// The parts of an issuer's metadata a resource server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerMetadata {
    /// `issuer`, equal to the configured one (RFC 8414 §3.3).
    pub issuer: String,
    /// `jwks_uri`: where the signing keys are published.
    pub jwks_uri: Option<url::Url>,
    /// `introspection_endpoint` (RFC 7662).
    pub introspection_endpoint: Option<url::Url>,
}

/// The URLs metadata is looked for at, in order: RFC 8414 §3.1 (the well-known segment
/// inserted between host and path), then OpenID Connect Discovery 1.0 §4 (appended).
pub(crate) fn metadata_urls(issuer: &url::Url) -> Vec<url::Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut rfc8414 = issuer.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = issuer.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    for u in [&mut rfc8414, &mut oidc] {
        u.set_query(None);
        u.set_fragment(None);
    }
    vec![rfc8414, oidc]
}

#[derive(serde::Deserialize)]
struct Raw {
    issuer: String,
    jwks_uri: Option<String>,
    introspection_endpoint: Option<String>,
}

/// Fetches the metadata of `issuer` (exactly as configured, compared exactly with the
/// document's `issuer`).
pub async fn discover(
    outbound: &Outbound,
    issuer: &str,
    policy: &Policy,
) -> Result<IssuerMetadata, RemoteError> {
    let base = url::Url::parse(issuer)
        .map_err(|e| RemoteError::Misconfigured(format!("issuer {issuer:?}: {e}")))?;
    let mut last = None;
    for u in metadata_urls(&base) {
        let answer = match outbound.get(&u, "application/json", policy).await {
            Ok(a) => a,
            Err(e) => {
                last = Some(RemoteError::unavailable(format!("{u}: {e}"), None));
                continue;
            }
        };
        if answer.status != 200 {
            last = Some(RemoteError::unavailable(
                format!("{u} answered {}", answer.status),
                answer.retry_after,
            ));
            continue;
        }
        let raw: Raw = serde_json::from_slice(&answer.body).map_err(|e| {
            RemoteError::unavailable(format!("{u} is not issuer metadata: {e}"), None)
        })?;
        if raw.issuer != issuer {
            return Err(RemoteError::Misconfigured(format!(
                "{u} names the issuer {:?}, not {issuer:?} (RFC 8414 §3.3)",
                raw.issuer
            )));
        }
        let parse = |name: &str, v: Option<String>| {
            v.map(|s| {
                url::Url::parse(&s)
                    .map_err(|e| RemoteError::Misconfigured(format!("{u}: {name} {s:?}: {e}")))
            })
            .transpose()
        };
        return Ok(IssuerMetadata {
            jwks_uri: parse("jwks_uri", raw.jwks_uri)?,
            introspection_endpoint: parse("introspection_endpoint", raw.introspection_endpoint)?,
            issuer: raw.issuer,
        });
    }
    Err(last.unwrap_or_else(|| RemoteError::unavailable("no metadata URL".into(), None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_inserts_the_well_known_segment_oidc_appends() {
        let urls = |i: &str| {
            metadata_urls(&url::Url::parse(i).unwrap())
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            urls("https://kc.example/realms/acme"),
            [
                "https://kc.example/.well-known/oauth-authorization-server/realms/acme",
                "https://kc.example/realms/acme/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("https://tenant.auth0.example/"),
            [
                "https://tenant.auth0.example/.well-known/oauth-authorization-server",
                "https://tenant.auth0.example/.well-known/openid-configuration"
            ]
        );
    }
}
