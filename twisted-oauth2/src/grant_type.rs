//! The names of grants: the one list of built-in `grant_type` values (RFC 6749 §4), with
//! what each needs to be available in this build.
//!
//! Everything else that needs "which grants exist" (configuration checks, the token
//! endpoint's registry, the RFC 8414 `grant_types_supported`, client checks) reads this
//! list or the registry built from it ([`crate::grant::GrantRegistry`]).

use std::borrow::Cow;
use std::fmt;

/// A `grant_type` value: a built-in name or an extension grant's absolute URI.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantType(Cow<'static, str>);

impl GrantType {
    /// `authorization_code` (RFC 6749 §4.1).
    pub const AUTHORIZATION_CODE: GrantType = GrantType(Cow::Borrowed("authorization_code"));
    /// `refresh_token` (RFC 6749 §6).
    pub const REFRESH_TOKEN: GrantType = GrantType(Cow::Borrowed("refresh_token"));
    /// `client_credentials` (RFC 6749 §4.4).
    pub const CLIENT_CREDENTIALS: GrantType = GrantType(Cow::Borrowed("client_credentials"));
    /// `password` (RFC 6749 §4.3; legacy, feature `password-grant`).
    pub const PASSWORD: GrantType = GrantType(Cow::Borrowed("password"));
    /// `implicit` (RFC 6749 §4.2; legacy, feature `implicit-grant`): used at the
    /// authorization endpoint (`response_type=token`), never at the token endpoint.
    pub const IMPLICIT: GrantType = GrantType(Cow::Borrowed("implicit"));

    /// Every built-in grant, in the order they are listed.
    pub const BUILT_IN: [GrantType; 5] = [
        GrantType::AUTHORIZATION_CODE,
        GrantType::REFRESH_TOKEN,
        GrantType::CLIENT_CREDENTIALS,
        GrantType::PASSWORD,
        GrantType::IMPLICIT,
    ];

    /// The grants a server enables when the configuration does not say: the OAuth 2.1 set.
    pub const DEFAULT: [GrantType; 3] = [
        GrantType::AUTHORIZATION_CODE,
        GrantType::REFRESH_TOKEN,
        GrantType::CLIENT_CREDENTIALS,
    ];

    /// A grant type by name (built-in or an extension URI).
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        GrantType(name.into())
    }

    /// The `grant_type` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an extension grant: an absolute URI (RFC 6749 §4.5).
    pub fn is_extension(&self) -> bool {
        self.0.contains(':')
    }

    /// Whether this built-in grant is compiled in (`password` and `implicit` need their
    /// cargo features). Extension grants are "available" when registered.
    pub fn is_compiled_in(&self) -> bool {
        let needs_feature = [
            (GrantType::PASSWORD, cfg!(feature = "password-grant")),
            (GrantType::IMPLICIT, cfg!(feature = "implicit-grant")),
        ];
        needs_feature
            .iter()
            .find(|(g, _)| g == self)
            .is_none_or(|(_, compiled)| *compiled)
    }

    /// Whether tokens are issued from it at the authorization endpoint's redirect (it
    /// needs registered redirect URIs and a consent step).
    pub fn uses_redirect(&self) -> bool {
        *self == GrantType::AUTHORIZATION_CODE || *self == GrantType::IMPLICIT
    }

    /// Whether it can start a token family (every grant but `refresh_token`, which only
    /// continues one).
    pub fn starts_a_grant(&self) -> bool {
        *self != GrantType::REFRESH_TOKEN
    }

    /// The built-in grant of this name, if any.
    pub fn built_in(name: &str) -> Option<GrantType> {
        GrantType::BUILT_IN.into_iter().find(|g| g.as_str() == name)
    }
}

impl fmt::Debug for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantType({})", self.0)
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for GrantType {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for GrantType {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A `response_type` of the authorization endpoint (RFC 6749 §3.1.1), which also decides
/// where the response parameters go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ResponseType {
    /// `code` (RFC 6749 §4.1): parameters in the query.
    Code,
    /// `token` (RFC 6749 §4.2, legacy implicit grant): parameters in the fragment.
    Token,
}

impl ResponseType {
    /// The `response_type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::Token => "token",
        }
    }

    /// Parses a `response_type` value this library knows.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "code" => Some(ResponseType::Code),
            "token" => Some(ResponseType::Token),
            _ => None,
        }
    }

    /// The grant it belongs to.
    pub fn grant_type(self) -> GrantType {
        match self {
            ResponseType::Code => GrantType::AUTHORIZATION_CODE,
            ResponseType::Token => GrantType::IMPLICIT,
        }
    }

    /// Whether the response parameters go in the fragment (else the query).
    pub fn uses_fragment(self) -> bool {
        self == ResponseType::Token
    }
}

impl fmt::Display for ResponseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why `name` is not an available grant, listing the valid names of this build.
/// The candidate closest to `word` when it is a near miss (normalised Damerau-Levenshtein
/// similarity of at least 0.7, `-` and `_` compared as one): `client-credentials` →
/// `client_credentials`.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let w = norm(word);
    candidates
        .into_iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(&w, &norm(c)), c))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

pub(crate) fn unknown_grant_type(name: &str, registered: &[String]) -> String {
    let mut valid: Vec<&str> = GrantType::BUILT_IN
        .iter()
        .filter(|g| g.is_compiled_in())
        .map(GrantType::as_str)
        .collect();
    for r in registered {
        if !valid.contains(&r.as_str()) {
            valid.push(r);
        }
    }
    let missing: Vec<String> = GrantType::BUILT_IN
        .iter()
        .filter(|g| !g.is_compiled_in())
        .map(|g| format!("`{g}` needs the cargo feature `{g}-grant`"))
        .collect();
    let features = if missing.is_empty() {
        String::new()
    } else {
        format!("; {}", missing.join(", "))
    };
    let hint = did_you_mean(name, valid.iter().copied())
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default();
    format!(
        "unknown grant type `{name}`{hint}: valid are {}, or a registered extension grant URI{features}",
        valid.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_names_and_defaults() {
        assert_eq!(
            GrantType::built_in("refresh_token"),
            Some(GrantType::REFRESH_TOKEN)
        );
        assert_eq!(GrantType::built_in("authorization-code"), None);
        assert!(GrantType::new("urn:ietf:params:oauth:grant-type:device_code").is_extension());
        assert!(GrantType::DEFAULT.iter().all(GrantType::is_compiled_in));
        let msg = unknown_grant_type("x", &[]);
        assert!(
            msg.contains("authorization_code, refresh_token, client_credentials"),
            "{msg}"
        );
    }
}
