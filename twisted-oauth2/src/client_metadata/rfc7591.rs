//! Client metadata (RFC 7591 §2): the checks shared by dynamic client registration
//! ([`crate::endpoint::register`]) and client ID metadata documents ([`super`]), against the
//! server's configuration only (no server, so the lower layers can use them).

use serde_json::{Map, Value};

use crate::config::RegistrationConfig;
use crate::error::{ErrorCode, OAuthError};
use crate::grant_type::GrantType;
use crate::scope::Scope;

/// Most redirect URIs one registration may list.
pub const MAX_REDIRECT_URIS: usize = 16;
/// Longest accepted redirect URI, in bytes.
pub const MAX_URI_LENGTH: usize = 2048;
/// Longest accepted `client_name`, in bytes.
pub const MAX_NAME_LENGTH: usize = 256;
/// Most `grant_types` or `response_types` entries accepted.
const MAX_LIST: usize = 8;

pub(crate) fn metadata_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::with_description(ErrorCode::INVALID_CLIENT_METADATA, description)
}

pub(crate) fn redirect_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::with_description(ErrorCode::INVALID_REDIRECT_URI, description)
}

/// The validated metadata of a registration.
pub(crate) struct Metadata {
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) grant_types: Vec<String>,
    #[allow(dead_code)] // validated; echoed from the grant types
    pub(crate) response_types: Vec<String>,
    pub(crate) auth_method: &'static str,
    pub(crate) client_name: Option<String>,
    pub(crate) scope: Option<Scope>,
    /// `application_type` (OpenID Connect Dynamic Client Registration §2, MCP SEP-837):
    /// `web` or `native` when sent.
    pub(crate) application_type: Option<&'static str>,
}

impl Metadata {
    /// Sets the redirect URIs, grant types, name and (when `restrict_scope`) the scope on a
    /// client being built.
    pub(crate) fn apply(
        &self,
        mut b: crate::client::ClientBuilder,
        restrict_scope: bool,
    ) -> crate::client::ClientBuilder {
        for u in &self.redirect_uris {
            b = b.redirect_uri(u.clone());
        }
        for g in &self.grant_types {
            b = b.grant_type(g.clone());
        }
        if let Some(n) = &self.client_name {
            b = b.name(n.clone());
        }
        if let (Some(s), true) = (&self.scope, restrict_scope) {
            b = b.scope(s.to_string());
        }
        b
    }
}

/// A member: absent or `null` → `None`.
pub(crate) fn member<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    m.get(name).filter(|v| !v.is_null())
}

fn string_list(
    m: &Map<String, Value>,
    name: &'static str,
    max: usize,
    err: fn(String) -> OAuthError,
) -> Result<Option<Vec<String>>, OAuthError> {
    let Some(v) = member(m, name) else {
        return Ok(None);
    };
    let Value::Array(items) = v else {
        return Err(err(format!("`{name}` must be an array of strings")));
    };
    if items.len() > max {
        return Err(err(format!("`{name}` lists more than {max} values")));
    }
    items
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(s.clone()),
            _ => Err(err(format!("`{name}` must be an array of strings"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Checks one redirect URI against the policy.
pub(crate) fn check_redirect_uri(cfg: &RegistrationConfig, raw: &str) -> Result<(), OAuthError> {
    if raw.len() > MAX_URI_LENGTH {
        return Err(redirect_error("a redirect URI is too long"));
    }
    if raw.contains('#') {
        return Err(redirect_error(
            "a redirect URI must not have a fragment (RFC 6749 section 3.1.2)",
        ));
    }
    let Ok(url) = url::Url::parse(raw) else {
        return Err(redirect_error("a redirect URI is not an absolute URI"));
    };
    let allowed = match url.scheme() {
        "https" => cfg.allow_https && url.host_str().is_some_and(|h| !h.is_empty()),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) if ip == std::net::Ipv4Addr::LOCALHOST => cfg.allow_loopback,
            Some(url::Host::Ipv6(ip)) if ip == std::net::Ipv6Addr::LOCALHOST => cfg.allow_loopback,
            Some(url::Host::Domain("localhost")) => cfg.allow_localhost,
            _ => false,
        },
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "ws" | "wss" | "ftp" => {
            false
        }
        _ => cfg.allow_private_use_schemes,
    };
    if !allowed {
        return Err(redirect_error(
            "this kind of redirect URI is not allowed by the server's registration policy",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(redirect_error("a redirect URI must not carry credentials"));
    }
    crate::client::RedirectUri::parse(raw)
        .map(|_| ())
        .map_err(|_| redirect_error("a redirect URI is not acceptable"))
}

/// Validates client metadata (RFC 7591 §2) against the server's configuration: the
/// registration policy and the server's grant types and scopes. Also used for client ID
/// metadata documents ([`crate::client_metadata`]).
pub(crate) fn validate_with(
    config: &crate::config::ServerConfig,
    scopes_supported: Option<&Scope>,
    m: &Map<String, Value>,
) -> Result<Metadata, OAuthError> {
    let cfg = &config.registration;
    let auth_method = match member(m, "token_endpoint_auth_method") {
        None => "none",
        Some(Value::String(s)) => match s.as_str() {
            "none" => "none",
            "client_secret_basic" => "client_secret_basic",
            "client_secret_post" => "client_secret_post",
            _ => {
                return Err(metadata_error(
                    "`token_endpoint_auth_method` must be none, client_secret_basic or client_secret_post",
                ))
            }
        },
        Some(_) => {
            return Err(metadata_error(
                "`token_endpoint_auth_method` must be a string",
            ))
        }
    };
    let grant_types = string_list(m, "grant_types", MAX_LIST, metadata_error)?
        .unwrap_or_else(|| vec![GrantType::AUTHORIZATION_CODE.as_str().to_owned()]);
    let mut grants: Vec<String> = Vec::with_capacity(grant_types.len());
    for g in grant_types {
        let registrable = [
            GrantType::AUTHORIZATION_CODE.as_str(),
            GrantType::REFRESH_TOKEN.as_str(),
            GrantType::CLIENT_CREDENTIALS.as_str(),
        ]
        .contains(&g.as_str());
        if !registrable || !config.grant_types.contains(&g) {
            return Err(metadata_error(
                "`grant_types` names a grant type this server does not offer for registration",
            ));
        }
        if g == GrantType::CLIENT_CREDENTIALS.as_str() && auth_method == "none" {
            return Err(metadata_error(
                "client_credentials needs a confidential client (a client_secret_* auth method)",
            ));
        }
        if !grants.contains(&g) {
            grants.push(g);
        }
    }
    let code = grants
        .iter()
        .any(|g| g == GrantType::AUTHORIZATION_CODE.as_str());
    let response_types = string_list(m, "response_types", MAX_LIST, metadata_error)?;
    let response_types = match response_types {
        None if code => vec!["code".to_owned()],
        None => Vec::new(),
        Some(r) => {
            if r.iter().any(|t| t != "code") {
                return Err(metadata_error("`response_types` may only hold `code`"));
            }
            let has_code = !r.is_empty();
            if has_code != code {
                return Err(metadata_error(
                    "`response_types` and `grant_types` are inconsistent (code needs authorization_code)",
                ));
            }
            if has_code {
                vec!["code".to_owned()]
            } else {
                Vec::new()
            }
        }
    };
    let redirect_uris =
        string_list(m, "redirect_uris", MAX_REDIRECT_URIS, redirect_error)?.unwrap_or_default();
    if code && redirect_uris.is_empty() {
        return Err(redirect_error(
            "`redirect_uris` is required for the authorization_code grant",
        ));
    }
    for u in &redirect_uris {
        check_redirect_uri(cfg, u)?;
    }
    let application_type = match member(m, "application_type") {
        None => None,
        Some(Value::String(t)) if t == "web" => Some("web"),
        Some(Value::String(t)) if t == "native" => Some("native"),
        Some(_) => {
            return Err(metadata_error(
                "`application_type` must be \"web\" or \"native\"",
            ))
        }
    };
    if let Some(kind) = application_type {
        for u in &redirect_uris {
            check_application_type(config, kind, u)?;
        }
    }
    let client_name = match member(m, "client_name") {
        None => None,
        Some(Value::String(s)) if s.len() <= MAX_NAME_LENGTH && !s.trim().is_empty() => {
            if s.chars().any(char::is_control) {
                return Err(metadata_error("`client_name` has control characters"));
            }
            Some(s.clone())
        }
        Some(_) => {
            return Err(metadata_error(format!(
                "`client_name` must be a non-empty string of at most {MAX_NAME_LENGTH} bytes"
            )))
        }
    };
    let scope = match member(m, "scope") {
        None => None,
        Some(Value::String(s)) => {
            if s.len() > config.max_scope_length {
                return Err(metadata_error("`scope` is too long"));
            }
            let scope =
                Scope::parse(s).map_err(|_| metadata_error("`scope` is not a valid scope"))?;
            if let Some(supported) = scopes_supported {
                if scope.iter().any(|t| !supported.iter().any(|x| x == t)) {
                    return Err(metadata_error(
                        "`scope` names a scope the server does not know",
                    ));
                }
            }
            Some(scope)
        }
        Some(_) => return Err(metadata_error("`scope` must be a string")),
    };
    Ok(Metadata {
        redirect_uris,
        grant_types: grants,
        response_types,
        auth_method,
        client_name,
        scope,
        application_type,
    })
}

/// The redirect rules of an explicit `application_type` (on top of the registration
/// policy): a `web` client redirects to `https` only (loopback too under the debug override
/// `allow_insecure_request_debug`); a `native` one to loopback (`http://127.0.0.1`,
/// `http://[::1]`, `http://localhost`) or a private-use scheme (RFC 8252 §7.1, §7.3).
fn check_application_type(
    config: &crate::config::ServerConfig,
    kind: &str,
    raw: &str,
) -> Result<(), OAuthError> {
    let Ok(url) = url::Url::parse(raw) else {
        return Err(redirect_error("a redirect URI is not an absolute URI"));
    };
    let loopback = url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
    let allowed = match kind {
        "web" => url.scheme() == "https" || (loopback && config.allow_insecure_request_debug),
        _ => loopback || !matches!(url.scheme(), "http" | "https"),
    };
    if allowed {
        Ok(())
    } else if kind == "web" {
        Err(redirect_error(
            "a web application's redirect URIs must use https",
        ))
    } else {
        Err(redirect_error(
            "a native application's redirect URIs must be loopback or a private-use scheme",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(v: serde_json::Value, debug: bool) -> Result<Metadata, OAuthError> {
        let config = crate::config::ServerConfig {
            issuer: "https://as.example".into(),
            allow_insecure_request_debug: debug,
            ..Default::default()
        };
        validate_with(&config, None, v.as_object().unwrap())
    }

    #[test]
    fn a_web_application_redirects_to_https_and_to_loopback_only_under_the_debug_override() {
        let web =
            |uri: &str| serde_json::json!({"redirect_uris": [uri], "application_type": "web"});
        assert!(meta(web("https://app.example/cb"), false).is_ok());
        let e = meta(web("http://127.0.0.1/cb"), false).err().unwrap();
        assert_eq!(e.code(), ErrorCode::INVALID_REDIRECT_URI);
        assert!(meta(web("http://127.0.0.1/cb"), true).is_ok());
        let native =
            serde_json::json!({"redirect_uris": ["http://[::1]/cb"], "application_type": "native"});
        assert_eq!(
            meta(native, false).unwrap().application_type,
            Some("native")
        );
    }
}
