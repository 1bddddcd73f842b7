//! Scopes (RFC 6749 §3.3): grammar, set semantics and subset checks.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::OAuthError;

/// Whether `b` may appear in a scope token: `%x21 / %x23-5B / %x5D-7E` (RFC 6749 §3.3).
pub const fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Whether `s` is a valid `scope` value: one or more scope tokens separated by single spaces.
pub const fn is_valid_scope(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    let mut prev_space = true;
    while i < b.len() {
        if b[i] == b' ' {
            if prev_space {
                return false;
            }
            prev_space = true;
        } else if is_scope_char(b[i]) {
            prev_space = false;
        } else {
            return false;
        }
        i += 1;
    }
    !prev_space
}

/// A set of scope tokens (RFC 6749 §3.3). Order and duplicates in the wire form do not
/// matter; [`Scope`]'s [`Display`](fmt::Display) gives the tokens sorted, space-separated.
///
/// Cloning is cheap (the set is shared).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Scope(Arc<BTreeSet<Box<str>>>);

/// Why a scope string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The string is empty, or has leading, trailing or doubled spaces.
    #[error("scope tokens must be separated by single spaces")]
    Spacing,
    /// A token holds a character outside RFC 6749 §3.3's set.
    #[error("scope holds a character not allowed by RFC 6749 section 3.3")]
    Character,
}

impl Scope {
    /// The empty scope.
    pub fn empty() -> Self {
        Scope::default()
    }

    /// Parses a wire `scope` value strictly: tokens separated by single spaces.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.bytes().any(|b| b != b' ' && !is_scope_char(b)) {
            return Err(ScopeError::Character);
        }
        if !is_valid_scope(s) {
            return Err(ScopeError::Spacing);
        }
        Ok(Scope(Arc::new(s.split(' ').map(Box::from).collect())))
    }

    /// Parses a request's `scope` parameter, mapping failure to `invalid_scope`.
    pub fn parse_param(s: &str) -> Result<Self, OAuthError> {
        Scope::parse(s).map_err(|e| OAuthError::invalid_scope(e.to_string()))
    }

    /// Builds a scope from tokens, each checked against the grammar.
    pub fn from_tokens<I, T>(tokens: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for t in tokens {
            let t = t.as_ref();
            if t.is_empty() {
                return Err(ScopeError::Spacing);
            }
            if !t.bytes().all(is_scope_char) {
                return Err(ScopeError::Character);
            }
            set.insert(Box::from(t));
        }
        Ok(Scope(Arc::new(set)))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `token` is in the set.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset(&self, other: &Scope) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.is_subset(&other.0)
    }

    /// Whether the set holds every token of the space-separated `required` list.
    /// An empty `required` is always satisfied.
    pub fn satisfies(&self, required: &str) -> bool {
        required
            .split(' ')
            .filter(|t| !t.is_empty())
            .all(|t| self.0.contains(t))
    }

    /// The tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }

    /// Tokens in `self` that are not in `other`.
    pub fn difference<'a>(&'a self, other: &'a Scope) -> impl Iterator<Item = &'a str> {
        self.0.difference(&other.0).map(|s| &**s)
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for t in self.0.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Wire {
            One(String),
            Many(Vec<String>),
        }
        match Wire::deserialize(d)? {
            Wire::One(s) if s.is_empty() => Ok(Scope::empty()),
            Wire::One(s) => Scope::parse(&s).map_err(serde::de::Error::custom),
            Wire::Many(v) => Scope::from_tokens(v).map_err(serde::de::Error::custom),
        }
    }
}

/// Scopes that include others (`scope_includes = { admin = ["VIEW_CLOCK"] }`): a token
/// granted `admin` satisfies a route requiring `VIEW_CLOCK`. Inclusion is transitive
/// (`admin` → `write` → `read`) and computed once, at launch; cycles are harmless.
///
/// ```
/// use std::collections::BTreeMap;
/// use twisted_oauth2::scope::{Scope, ScopeHierarchy};
///
/// let h = ScopeHierarchy::new(&BTreeMap::from([
///     ("admin".to_owned(), vec!["write".to_owned()]),
///     ("write".to_owned(), vec!["read".to_owned()]),
/// ]))
/// .unwrap();
/// let admin = Scope::parse("admin").unwrap();
/// assert!(h.satisfies(&admin, "read write"));
/// assert!(!h.satisfies(&Scope::parse("read").unwrap(), "write"));
/// assert_eq!(h.including("read").collect::<Vec<_>>(), ["admin", "write"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ScopeHierarchy {
    /// Scope → every scope it includes (transitively), itself excluded.
    implied: std::collections::BTreeMap<String, BTreeSet<String>>,
}

/// The most inclusion rules accepted (configuration, bounded like every input).
const MAX_INCLUSIONS: usize = 1024;

impl ScopeHierarchy {
    /// The hierarchy of `includes` (scope → the scopes it includes). A token that is no
    /// RFC 6749 §3.3 scope token is an error naming it.
    pub fn new(includes: &std::collections::BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let total: usize = includes.values().map(Vec::len).sum();
        if total > MAX_INCLUSIONS {
            return Err(format!("more than {MAX_INCLUSIONS} inclusions"));
        }
        for (k, v) in includes {
            for t in std::iter::once(k).chain(v) {
                if !is_valid_scope(t) || t.contains(' ') {
                    return Err(format!(
                        "`{}` is not one scope token (RFC 6749 section 3.3)",
                        crate::error::printable(t)
                    ));
                }
            }
        }
        let mut implied = std::collections::BTreeMap::new();
        for k in includes.keys() {
            let mut seen: BTreeSet<String> = BTreeSet::new();
            let mut todo: Vec<&String> = includes[k].iter().collect();
            while let Some(t) = todo.pop() {
                if t != k && seen.insert(t.clone()) {
                    if let Some(next) = includes.get(t) {
                        todo.extend(next);
                    }
                }
            }
            implied.insert(k.clone(), seen);
        }
        Ok(ScopeHierarchy { implied })
    }

    /// Whether `granted` holds, directly or through an including scope, every token of the
    /// space-separated `required`. An empty `required` is always satisfied.
    pub fn satisfies(&self, granted: &Scope, required: &str) -> bool {
        if self.implied.is_empty() {
            return granted.satisfies(required);
        }
        required.split(' ').filter(|t| !t.is_empty()).all(|t| {
            granted.0.contains(t)
                || granted
                    .iter()
                    .any(|g| self.implied.get(g).is_some_and(|i| i.contains(t)))
        })
    }

    /// The scopes that include `scope`, sorted.
    pub fn including<'a>(&'a self, scope: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.implied
            .iter()
            .filter(move |(_, i)| i.contains(scope))
            .map(|(k, _)| k.as_str())
    }

    /// Whether no scope includes another.
    pub fn is_empty(&self) -> bool {
        self.implied.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_rfc6749_3_3() {
        assert!(is_valid_scope("a"));
        assert!(is_valid_scope("VIEW_CLOCK profile:read https://x/y"));
        assert!(!is_valid_scope(""));
        assert!(!is_valid_scope(" a"));
        assert!(!is_valid_scope("a "));
        assert!(!is_valid_scope("a  b"));
        assert!(!is_valid_scope("a\tb"));
        assert!(!is_valid_scope("a\"b"));
        assert!(!is_valid_scope("a\\b"));
        assert!(!is_valid_scope("caf\u{e9}"));
    }

    #[test]
    fn set_semantics_ignore_order_and_duplicates() {
        let a = Scope::parse("b a a").unwrap();
        let b = Scope::parse("a b").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "a b");
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn subset_and_satisfies() {
        let all = Scope::parse("a b c").unwrap();
        let some = Scope::parse("a c").unwrap();
        assert!(some.is_subset(&all));
        assert!(!all.is_subset(&some));
        assert!(all.satisfies("a b"));
        assert!(!some.satisfies("a b"));
        assert!(some.satisfies(""));
        assert_eq!(all.difference(&some).collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn scope_errors_name_the_problem() {
        assert_eq!(Scope::parse("a  b"), Err(ScopeError::Spacing));
        assert_eq!(Scope::parse("\u{e9}"), Err(ScopeError::Character));
        assert_eq!(
            Scope::parse_param("").unwrap_err().code(),
            crate::ErrorCode::InvalidScope
        );
    }

    #[test]
    fn deserializes_from_string_or_list() {
        let s: Scope = serde_json::from_str("\"a b\"").unwrap();
        let l: Scope = serde_json::from_str("[\"b\",\"a\"]").unwrap();
        assert_eq!(s, l);
        assert!(serde_json::from_str::<Scope>("[\"a b\"]").is_err());
    }
}
