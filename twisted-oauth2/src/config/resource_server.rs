//! The `[oauth2.resource_server]` table: protect routes against an external authorization
//! server, without running one of our own (see docs/resource-server.md).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ConfigError;

/// The algorithm names `algorithms` accepts (those the `jwt` feature verifies).
pub const ALGORITHM_NAMES: &[&str] = &[
    "EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
];

/// The longest `leeway` and `introspection.cache_ttl`, seconds.
const MAX_SECONDS: u64 = 3600;

/// The `[oauth2.resource_server]` table. When it is present the Rocket fairing runs in
/// resource-server-only mode: it builds no authorization server and protects `#[oauth]`
/// routes with [`RemoteValidator`](crate::remote::RemoteValidator) (feature
/// `resource-server`) against `issuer`.
///
/// Build it with struct-update syntax:
/// `ResourceServerConfig { issuer: "https://kc.example/realms/acme".into(), audience: vec!["https://api.example".into()], ..Default::default() }`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceServerConfig {
    /// The external issuer, exactly as its metadata names it (RFC 8414 §3.3: compared
    /// character for character, trailing slash included). Required.
    pub issuer: String,
    /// The audiences a token must name one of (`aud`): a string or a list. Required.
    #[serde(deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// The RFC 9728 resource identifier of this API. Default: the first `audience`.
    pub resource: Option<String>,
    /// The JWS algorithms accepted. Default `["RS256", "ES256", "EdDSA"]`.
    pub algorithms: Vec<String>,
    /// Where the issuer's keys are, instead of its metadata's `jwks_uri`.
    pub jwks_uri: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, seconds. Default 60.
    pub leeway: u64,
    /// Whether a JWT's header must say `typ: at+jwt` (RFC 9068 §4). Default `true`; turn it
    /// off for issuers whose access tokens say `typ: JWT` (Keycloak, Microsoft Entra ID,
    /// Auth0 outside its RFC 9068 dialect).
    pub require_typ: bool,
    /// Development only: the issuer, its JWKS and its introspection endpoint may be plain
    /// `http`, and protected routes accept tokens over plain HTTP. The launch banner says
    /// so. Default `false`.
    pub allow_http: bool,
    /// Opaque tokens: RFC 7662 introspection at the issuer. Absent: only JWTs are accepted.
    pub introspection: Option<IntrospectionConfig>,
    /// Not a setting: use `..Default::default()`.
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl Default for ResourceServerConfig {
    fn default() -> Self {
        ResourceServerConfig {
            issuer: String::new(),
            audience: Vec::new(),
            resource: None,
            algorithms: ["RS256", "ES256", "EdDSA"].map(String::from).to_vec(),
            jwks_uri: None,
            leeway: 60,
            require_typ: true,
            allow_http: false,
            introspection: None,
            __non_exhaustive: (),
        }
    }
}

impl fmt::Debug for ResourceServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceServerConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .field("algorithms", &self.algorithms)
            .field("jwks_uri", &self.jwks_uri)
            .field("leeway", &self.leeway)
            .field("require_typ", &self.require_typ)
            .field("allow_http", &self.allow_http)
            .field("introspection", &self.introspection)
            .finish()
    }
}

/// The `[oauth2.resource_server.introspection]` table: how opaque tokens are checked
/// (RFC 7662) and how long answers are kept.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// This resource server's client id at the issuer. Required.
    pub client_id: String,
    /// Its secret, sent with HTTP Basic (`client_secret_basic`). Required. Never logged,
    /// never serialized.
    #[serde(skip_serializing)]
    pub client_secret: String,
    /// The introspection endpoint, instead of the metadata's `introspection_endpoint`.
    pub endpoint: Option<String>,
    /// How long an active answer is reused, seconds (never past the token's `exp`); an
    /// inactive one is reused for at most 5 seconds. `0`: every request asks. A revoked
    /// token may be accepted for up to this long. Default 30.
    pub cache_ttl: u64,
    /// Most answers kept (active and inactive each). Default 10000.
    pub max_cached: usize,
    /// Not a setting: use `..Default::default()`.
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl Default for IntrospectionConfig {
    fn default() -> Self {
        IntrospectionConfig {
            client_id: String::new(),
            client_secret: String::new(),
            endpoint: None,
            cache_ttl: 30,
            max_cached: 10_000,
            __non_exhaustive: (),
        }
    }
}

impl fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .field("cache_ttl", &self.cache_ttl)
            .field("max_cached", &self.max_cached)
            .finish()
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn setting(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Setting {
        key,
        reason: reason.into(),
    }
}

/// `Ok` for an absolute `http(s)` URL (`https` unless `allow_http`).
fn check_url(key: &'static str, value: &str, allow_http: bool) -> Result<url::Url, ConfigError> {
    let u = url::Url::parse(value).map_err(|e| {
        setting(
            key,
            format!("`{}` is not a URL: {e}", crate::error::printable(value)),
        )
    })?;
    match u.scheme() {
        "https" => Ok(u),
        "http" if allow_http => Ok(u),
        "http" => Err(setting(
            key,
            format!(
                "`{}` is plain http: use https (resource_server.allow_http = true is for \
                 development only)",
                crate::error::printable(value)
            ),
        )),
        _ => Err(setting(
            key,
            format!("`{}` is not an http(s) URL", crate::error::printable(value)),
        )),
    }
}

impl ResourceServerConfig {
    /// Checks the table; the error names the key and says what to write.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.issuer.trim().is_empty() {
            return Err(setting(
                "resource_server.issuer",
                "is required: the external authorization server's issuer, exactly as its \
                 metadata says (e.g. issuer = \"https://kc.example.com/realms/acme\")",
            ));
        }
        check_url("resource_server.issuer", &self.issuer, self.allow_http)?;
        if self.audience.is_empty() || self.audience.iter().any(|a| a.trim().is_empty()) {
            return Err(setting(
                "resource_server.audience",
                "is required: the audience (`aud`) the issuer puts in tokens for this API, \
                 a string or a list (e.g. audience = \"https://api.example.com\")",
            ));
        }
        if self.audience.len() > 64 {
            return Err(setting(
                "resource_server.audience",
                "has more than 64 entries",
            ));
        }
        if self.algorithms.is_empty() {
            return Err(setting(
                "resource_server.algorithms",
                format!("is empty: list some of {}", ALGORITHM_NAMES.join(", ")),
            ));
        }
        for a in &self.algorithms {
            if !ALGORITHM_NAMES.contains(&a.as_str()) {
                return Err(setting(
                    "resource_server.algorithms",
                    format!(
                        "`{}` is not an accepted algorithm{}; valid are {}",
                        crate::error::printable(a),
                        crate::grant_type::did_you_mean(a, ALGORITHM_NAMES.iter().copied())
                            .map(|c| format!(" (did you mean `{c}`?)"))
                            .unwrap_or_default(),
                        ALGORITHM_NAMES.join(", ")
                    ),
                ));
            }
        }
        if let Some(u) = &self.jwks_uri {
            check_url("resource_server.jwks_uri", u, self.allow_http)?;
        }
        if let Some(r) = &self.resource {
            check_url("resource_server.resource", r, self.allow_http)?;
        }
        if self.leeway > MAX_SECONDS {
            return Err(setting(
                "resource_server.leeway",
                format!("must be at most {MAX_SECONDS} seconds"),
            ));
        }
        if let Some(i) = &self.introspection {
            if i.client_id.trim().is_empty() || i.client_secret.is_empty() {
                return Err(setting(
                    "resource_server.introspection",
                    "needs client_id and client_secret: this resource server's credentials \
                     at the issuer (client_secret_basic)",
                ));
            }
            if let Some(e) = &i.endpoint {
                check_url("resource_server.introspection.endpoint", e, self.allow_http)?;
            }
            if i.cache_ttl > MAX_SECONDS {
                return Err(setting(
                    "resource_server.introspection.cache_ttl",
                    format!("must be at most {MAX_SECONDS} seconds"),
                ));
            }
            if i.max_cached == 0 || i.max_cached > 10_000_000 {
                return Err(setting(
                    "resource_server.introspection.max_cached",
                    "must be a positive limit (at most 10000000)",
                ));
            }
        }
        Ok(())
    }

    /// The RFC 9728 resource identifier: `resource`, else the first `audience`.
    pub fn resource_identifier(&self) -> &str {
        self.resource
            .as_deref()
            .or(self.audience.first().map(String::as_str))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ResourceServerConfig {
        ResourceServerConfig {
            issuer: "https://as.example".into(),
            audience: vec!["https://api.example/notes".into()],
            ..Default::default()
        }
    }

    #[test]
    fn audience_is_a_string_or_a_list() {
        let one: ResourceServerConfig =
            serde_json::from_str(r#"{"issuer":"https://a","audience":"x"}"#).unwrap();
        assert_eq!(one.audience, ["x"]);
        let two: ResourceServerConfig =
            serde_json::from_str(r#"{"issuer":"https://a","audience":["x","y"]}"#).unwrap();
        assert_eq!(two.audience, ["x", "y"]);
        assert_eq!(two.algorithms, ["RS256", "ES256", "EdDSA"]);
        assert!(two.require_typ && two.leeway == 60);
    }

    #[test]
    fn missing_issuer_audience_and_unknown_algorithms_are_named() {
        base().validate().unwrap();
        let e = ResourceServerConfig::default().validate().unwrap_err();
        assert!(e.to_string().contains("resource_server.issuer"), "{e}");
        let mut c = base();
        c.audience.clear();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("resource_server.audience"), "{e}");
        let mut c = base();
        c.algorithms = vec!["HS256".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("`HS256` is not an accepted algorithm"), "{e}");
        let mut c = base();
        c.issuer = "http://as.example".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("allow_http"), "{e}");
        c.allow_http = true;
        c.validate().unwrap();
    }

    #[test]
    fn introspection_needs_credentials_and_the_secret_is_never_shown() {
        let mut c = base();
        c.introspection = Some(IntrospectionConfig {
            client_id: "rs".into(),
            ..Default::default()
        });
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("client_secret"), "{e}");
        c.introspection.as_mut().unwrap().client_secret = "s3cret-value".into();
        c.validate().unwrap();
        let shown = format!("{c:?}") + &serde_json::to_string(&c).unwrap();
        assert!(!shown.contains("s3cret-value"), "{shown}");
    }

    #[test]
    fn the_resource_identifier_defaults_to_the_first_audience() {
        let mut c = base();
        assert_eq!(c.resource_identifier(), "https://api.example/notes");
        c.resource = Some("https://api.example/".into());
        assert_eq!(c.resource_identifier(), "https://api.example/");
    }
}
