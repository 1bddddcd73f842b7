//! Strict `application/x-www-form-urlencoded` parsing (RFC 6749 §3.1, §3.2, Appendix B).
//!
//! Unlike lenient parsers, this refuses what OAuth forbids: a parameter sent more than once,
//! an invalid percent-escape, or bytes that are not UTF-8. Parameters without a value count
//! as omitted (RFC 6749 §3.1).

use percent_encoding::percent_decode;

use crate::error::OAuthError;

/// Parameters that may legitimately repeat (RFC 8707 `resource`).
const REPEATABLE: &[&str] = &["resource"];

/// The most parameters a form or query may carry unless configured otherwise
/// ([`crate::config::ServerConfig::max_parameters`]). OAuth requests use about a dozen.
pub const DEFAULT_MAX_PARAMETERS: usize = 64;

/// Parsed form or query parameters.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values can be secrets (client_secret, code, refresh_token): print names only.
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Params {
    /// Parses a body or query string, refusing duplicates and more than
    /// [`DEFAULT_MAX_PARAMETERS`] parameters.
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        Params::parse_limited(input, DEFAULT_MAX_PARAMETERS)
    }

    /// Parses a body or query string, refusing duplicates and more than `max` parameters
    /// (`invalid_request`). Time and memory are linear in the input's length.
    pub fn parse_limited(input: &[u8], max: usize) -> Result<Self, OAuthError> {
        Params::parse_inner(input, true, max)
    }

    /// Parses keeping duplicates, for endpoints that must decide per parameter where a
    /// duplicate's error goes (the authorization endpoint). Use [`Params::unique`].
    /// At most [`DEFAULT_MAX_PARAMETERS`] parameters.
    pub fn parse_keep_duplicates(input: &[u8]) -> Result<Self, OAuthError> {
        Params::parse_inner(input, false, DEFAULT_MAX_PARAMETERS)
    }

    /// [`Params::parse_keep_duplicates`] with a limit of `max` parameters.
    pub fn parse_keep_duplicates_limited(input: &[u8], max: usize) -> Result<Self, OAuthError> {
        Params::parse_inner(input, false, max)
    }

    /// The value of `name` when it appears at most once (empty counts as absent);
    /// `invalid_request` when it repeats.
    pub fn unique(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        let first = it.next();
        if it.next().is_some() {
            return Err(OAuthError::duplicate_parameter(name));
        }
        Ok(first.map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()))
    }

    fn parse_inner(input: &[u8], refuse_duplicates: bool, max: usize) -> Result<Self, OAuthError> {
        let mut out: Vec<(String, String)> = Vec::new();
        // Names seen so far, for a duplicate check in constant time per parameter (a
        // scan of `out` made a 64 KiB body of 16,000 names take a second).
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for pair in input.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            if out.len() >= max {
                return Err(OAuthError::invalid_request(format!(
                    "too many parameters (at most {max})"
                )));
            }
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let k = decode(k)?;
            let v = decode(v)?;
            if k.is_empty() {
                continue;
            }
            // Decoded names are compared (`a` and `%61` are one parameter).
            if !seen.insert(k.clone()) && refuse_duplicates && !REPEATABLE.contains(&k.as_str()) {
                return Err(OAuthError::duplicate_parameter(&k));
            }
            out.push((k, v));
        }
        Ok(Params(out))
    }

    /// The value of `name`; empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::missing_parameter(name))
    }

    /// Whether `name` is present (even with an empty value).
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Every value of `name` (for repeatable parameters).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Builds parameters from pairs (for callers that parsed elsewhere).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, OAuthError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (k, v) in pairs {
            let k = k.into();
            if !seen.insert(k.clone()) && !REPEATABLE.contains(&k.as_str()) {
                return Err(OAuthError::duplicate_parameter(&k));
            }
            out.push((k, v.into()));
        }
        Ok(Params(out))
    }
}

/// Decodes one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub(crate) fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let ok = raw.len() > i + 2
                && raw[i + 1].is_ascii_hexdigit()
                && raw[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(OAuthError::invalid_request("invalid percent-encoding"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let plus: Vec<u8>;
    let raw = if raw.contains(&b'+') {
        plus = raw
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        &plus[..]
    } else {
        raw
    };
    percent_decode(raw)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| OAuthError::invalid_request("parameters must be UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let p = Params::parse(b"grant_type=client_credentials&scope=a+b%20c&x=").unwrap();
        assert_eq!(p.get("grant_type"), Some("client_credentials"));
        assert_eq!(p.get("scope"), Some("a b c"));
        assert_eq!(
            p.get("x"),
            None,
            "empty value counts as omitted (RFC 6749 3.1)"
        );
        assert!(p.contains("x"));
    }

    #[test]
    fn duplicate_parameter_is_invalid_request_rfc6749_3_2() {
        let e = Params::parse(b"a=1&a=2").unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidRequest);
        assert!(e.description().unwrap().contains("duplicate"));
        assert!(Params::parse(b"a=1&a=").is_err());
        assert_eq!(
            Params::parse(b"resource=a&resource=b")
                .unwrap()
                .all("resource")
                .count(),
            2
        );
    }

    #[test]
    fn bad_percent_encoding_or_utf8_is_invalid_request() {
        assert!(Params::parse(b"a=%zz").is_err());
        assert!(Params::parse(b"a=%4").is_err());
        assert!(Params::parse(b"a=%ff%fe").is_err());
        assert!(Params::parse(b"a=\xff").is_err());
        assert_eq!(Params::parse(b"a=%C3%A9").unwrap().get("a"), Some("\u{e9}"));
    }

    #[test]
    fn parameter_count_is_capped_with_invalid_request() {
        let many: String = (0..65).map(|i| format!("p{i}=x&")).collect();
        let e = Params::parse(many.as_bytes()).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidRequest);
        assert!(e.description().unwrap().contains("too many parameters"));
        assert!(Params::parse_keep_duplicates(many.as_bytes()).is_err());
        let ok: String = (0..64).map(|i| format!("p{i}=x&")).collect();
        assert_eq!(Params::parse(ok.as_bytes()).unwrap().0.len(), 64);
        assert!(Params::parse_limited(b"a=1&b=2&c=3", 2).is_err());
        // Separators alone are not parameters.
        assert!(Params::parse(&[b'&'; 10_000]).is_ok());
    }

    #[test]
    fn encoded_and_plain_names_are_one_parameter_rfc6749_3_1() {
        assert!(Params::parse(b"a=1&%61=2").is_err());
        assert!(Params::parse_limited(b"a=1&%61=2", 1000).is_err());
    }

    #[test]
    fn many_distinct_names_parse_without_quadratic_work() {
        // 16,000 names in 64 KiB: with the cap lifted, the duplicate check must stay
        // linear (the benchmark `form_parse` measures time; this checks the result).
        let body: String = (0..16_000).map(|i| format!("{i:x}&")).collect();
        let p = Params::parse_limited(body.as_bytes(), usize::MAX).unwrap();
        assert_eq!(p.0.len(), 16_000);
        let dup = format!("{body}0");
        assert!(Params::parse_limited(dup.as_bytes(), usize::MAX).is_err());
    }

    #[test]
    fn debug_hides_values() {
        let p = Params::parse(b"client_secret=hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
