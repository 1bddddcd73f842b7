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
/// Longest accepted `client_name`, in bytes. A name also must not hold control or format
/// characters, nor look like a configured client's name or id (case folding and UTS #39
/// confusable skeletons).
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

/// Checks one redirect URI against the policy and returns its normal form (the one
/// stored): an RFC 3986 absolute URI, refused rather than repaired
/// ([`RedirectUri`](crate::client::RedirectUri)), of a kind the policy allows, without
/// credentials. Loopback is decided by [`crate::client::classify_host`], as for matching.
pub(crate) fn check_redirect_uri(
    cfg: &RegistrationConfig,
    raw: &str,
) -> Result<String, OAuthError> {
    use crate::client::{classify_host, HostKind, RedirectUri};
    if raw.len() > MAX_URI_LENGTH {
        return Err(redirect_error("a redirect URI is too long"));
    }
    if raw.contains('#') {
        return Err(redirect_error(
            "a redirect URI must not have a fragment (RFC 6749 section 3.1.2)",
        ));
    }
    let Ok(uri) = RedirectUri::parse(raw) else {
        return Err(redirect_error(
            "a redirect URI is not an absolute URI (RFC 3986): no spaces, backslashes, \
             control or non-ASCII characters, a host after `//` for http and https, a \
             port up to 65535",
        ));
    };
    // Normalised and strictly parsed: the components below are those of the stored form.
    let Ok(parsed) = fluent_uri::Uri::parse(uri.as_str()) else {
        return Err(redirect_error("a redirect URI is not acceptable"));
    };
    let authority = parsed.authority();
    let host = authority.map(|a| classify_host(a.host()));
    let allowed = match parsed.scheme().as_str() {
        "https" => cfg.allow_https,
        "http" => match host {
            Some(HostKind::Loopback(_)) => cfg.allow_loopback,
            Some(HostKind::Localhost) => cfg.allow_localhost,
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
    if authority.is_some_and(|a| a.has_userinfo()) {
        return Err(redirect_error("a redirect URI must not carry credentials"));
    }
    Ok(uri.as_str().to_owned())
}

/// Whether `c` may not appear in a `client_name`: control (Cc), format (Cf: U+202E
/// RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE, U+2066 LEFT-TO-RIGHT ISOLATE, the
/// joiners U+200C/U+200D, ...), line and paragraph separators (Zl, Zp).
fn is_forbidden_in_name(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// The forms under which two names count as the same: case folded and reduced to their
/// UTS #39 confusable skeletons, in both orders (folding first catches `DEMO` for `Demo`,
/// the skeleton first catches a capital `I` for `l`), with white space collapsed.
fn name_keys(name: &str) -> [String; 2] {
    let key = |s: &str| -> String {
        let folded = caseless::default_case_fold_str(s);
        folded.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let skeleton = |s: &str| -> String { unicode_security::skeleton(s).collect() };
    [
        key(&skeleton(name)),
        key(&skeleton(&caseless::default_case_fold_str(name))),
    ]
}

/// Checks a `client_name` (RFC 7591 §2): no control or format characters
/// ([`is_forbidden_in_name`]; refused, not stripped, so what is stored is what was sent),
/// and not a look-alike of the name or id of a client from the configuration
/// (`oauth2.clients`), whom consent pages present as verified.
fn check_client_name(config: &crate::config::ServerConfig, name: &str) -> Result<(), OAuthError> {
    if name.chars().any(is_forbidden_in_name) {
        return Err(metadata_error(
            "`client_name` has control or formatting characters (Unicode Cc, Cf, Zl, Zp)",
        ));
    }
    let keys = name_keys(name);
    let taken = config.clients.iter().any(|c| {
        std::iter::once(c.id.as_str())
            .chain(c.name.as_deref())
            .any(|n| name_keys(n).iter().any(|k| keys.contains(k)))
    });
    if taken {
        return Err(metadata_error(
            "`client_name` is too close to the name of a client this server vouches for",
        ));
    }
    Ok(())
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
            crate::device::GRANT_TYPE,
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
    let mut normalised: Vec<String> = Vec::with_capacity(redirect_uris.len());
    for u in &redirect_uris {
        let n = check_redirect_uri(cfg, u)?;
        if !normalised.contains(&n) {
            normalised.push(n);
        }
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
    let redirect_uris = normalised;
    let client_name = match member(m, "client_name") {
        None => None,
        Some(Value::String(s)) if s.len() <= MAX_NAME_LENGTH && !s.trim().is_empty() => {
            check_client_name(config, s)?;
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
mod application_type_tests {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientConfig, ServerConfig};

    fn config() -> ServerConfig {
        ServerConfig {
            clients: vec![ClientConfig {
                id: "demo-web".into(),
                name: Some("Demo web client".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn client_names_refuse_format_and_control_characters() {
        let cfg = config();
        for bad in [
            "Good\u{202E}tneilc",
            "Zero\u{200B}width",
            "Iso\u{2066}late",
            "Join\u{200D}er",
            "Soft\u{AD}hyphen",
            "Bell\u{7}",
            "Line\u{2028}break",
        ] {
            let e = check_client_name(&cfg, bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::INVALID_CLIENT_METADATA, "{bad:?}");
        }
        assert!(check_client_name(&cfg, "Café Ωmega 日本").is_ok());
    }

    #[test]
    fn client_names_may_not_look_like_a_configured_client_uts39() {
        let cfg = config();
        for alike in [
            "Demo web client",
            "demo web client",
            "DEMO WEB CLIENT",
            "D\u{435}mo web client", // Cyrillic е
            "Demo web cIient",       // capital I for l
            "Derno web client",      // rn for m
            "  Demo   web client ",
            "DEMO-WEB",
            "dem\u{43E}-web", // Cyrillic о in the id
        ] {
            let e = check_client_name(&cfg, alike).unwrap_err();
            assert_eq!(e.code(), ErrorCode::INVALID_CLIENT_METADATA, "{alike:?}");
        }
        for other in ["Demo web client 2", "Demo mobile client", "My app"] {
            assert!(check_client_name(&cfg, other).is_ok(), "{other:?}");
        }
    }
}
