//! Resource indicators (RFC 8707): which resource servers an access token is for.
//!
//! A client names the resource servers it wants a token for with `resource` (repeatable) on
//! the authorization request and on token requests. The server knows the resources it issues
//! for ([`Resources`]: the application's own RFC 9728 resource,
//! [`ServerConfig::resource`](crate::config::ServerConfig::resource) or the issuer, plus
//! [`ServerConfig::resources`](crate::config::ServerConfig::resources)); any other value is
//! `invalid_target` (RFC 8707 §2).
//!
//! Matching: each value must be an absolute URI without fragment. Values are compared after
//! normalization (RFC 3986 §6.2.2 and §6.2.3 as the `url` crate applies them): scheme and
//! host case-insensitive, a default port dropped, an empty path equal to `/`. The token
//! carries the configured spelling of each resource it names.
//!
//! The policy:
//! - what the authorization request names is bound to the code; a token request may name a
//!   subset of it (the access token is then for that subset), never more;
//! - the refresh token keeps the whole granted set, and each refresh may narrow again;
//! - a code, refresh or client-credentials request naming nothing gets the granted set, or,
//!   when the authorization request named nothing either, the default audience: the
//!   application's own resource ([`Resources::default_audience`]);
//! - the protected routes of this application (the `#[oauth]` routes and the guards) refuse a
//!   token whose audience does not include the application's own resource, with `401
//!   invalid_token`. A token record without any audience (stored before resource indicators
//!   existed, or issued by an application grant that set none) counts as the default
//!   audience.

use std::sync::Arc;

use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;

/// The most distinct `resource` values one request may name.
pub const MAX_RESOURCES_PER_REQUEST: usize = 16;

/// The resources a server issues tokens for, and the default audience.
#[derive(Debug, Clone)]
pub struct Resources {
    /// (configured spelling, normalized form); the first is the application's own.
    known: Vec<(Arc<str>, String)>,
    /// Routes that are resources of their own: (route path without trailing `/`, the known
    /// resource), longest path first.
    routes: Vec<(String, Arc<str>)>,
}

/// Why a resource URI was refused.
fn refusal(reason: &str) -> OAuthError {
    OAuthError::with_description(ErrorCode::INVALID_TARGET, reason.to_owned())
}

/// The normalized form of a resource URI, or why it is not one (an absolute URI without
/// fragment, RFC 8707 §2).
///
/// ```
/// use twisted_oauth2::resource_indicator::normalize;
/// assert_eq!(normalize("HTTPS://API.Example.com").unwrap(), "https://api.example.com/");
/// assert_eq!(normalize("https://api.example.com:443/mcp").unwrap(), "https://api.example.com/mcp");
/// assert!(normalize("/relative").is_err());
/// assert!(normalize("https://api.example.com/#frag").is_err());
/// ```
pub fn normalize(uri: &str) -> Result<String, &'static str> {
    if uri.contains('#') {
        return Err("a resource must not have a fragment (RFC 8707 section 2)");
    }
    let mut parsed = url::Url::parse(uri)
        .map_err(|_| "a resource must be an absolute URI (RFC 8707 section 2)")?;
    if parsed.has_host() && parsed.host_str() == Some("") {
        return Err("a resource must be an absolute URI (RFC 8707 section 2)");
    }
    // `…/mcp/` names what `…/mcp` names (the most reported MCP interop mismatch).
    let path = parsed.path();
    if parsed.has_host() && path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/').to_owned();
        parsed.set_path(if trimmed.is_empty() { "/" } else { &trimmed });
    }
    Ok(parsed.as_str().to_owned())
}

/// Whether the normalized resource `above` is `below` or an ancestor of it: same scheme,
/// host and port, and `above`'s path a prefix of `below`'s at a segment boundary, without
/// query. `https://h/` is above `https://h/mcp`; `https://h/mc` is not.
fn is_at_or_above(above: &str, below: &str) -> bool {
    if above == below {
        return true;
    }
    let (Ok(a), Ok(b)) = (url::Url::parse(above), url::Url::parse(below)) else {
        return false;
    };
    if a.origin() != b.origin() || a.query().is_some() || !a.has_host() {
        return false;
    }
    let (ap, bp) = (a.path(), b.path());
    ap == "/"
        || bp
            .strip_prefix(ap)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Resources {
    /// The application's own resource `own` (the default audience) and the `others` it also
    /// issues tokens for. Errors name the offending value.
    pub fn new<'a>(
        own: &'a str,
        others: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, String> {
        let mut known: Vec<(Arc<str>, String)> = Vec::new();
        for r in std::iter::once(own).chain(others) {
            let n = normalize(r).map_err(|why| format!("`{r}`: {why}"))?;
            if !known.iter().any(|(_, k)| *k == n) {
                known.push((Arc::from(r), n));
            }
        }
        Ok(Resources {
            known,
            routes: Vec::new(),
        })
    }

    /// Makes routes resources of their own: each `(route path, resource)` pair names a
    /// resource already known (given to [`Self::new`]). See [`Self::route_resource`].
    pub fn with_routes(mut self, routes: impl IntoIterator<Item = (String, String)>) -> Self {
        for (path, r) in routes {
            if let Ok(found) = self.find(&r) {
                self.routes.push((path, found));
            }
        }
        self.routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        self
    }

    /// The resource of the route serving `path`: the longest configured route path that is
    /// `path` or a prefix of it at a segment boundary; `None` for the application's other
    /// routes (whose resource is [`Self::default_audience`]).
    pub fn route_resource(&self, path: &str) -> Option<&Arc<str>> {
        self.routes
            .iter()
            .find(|(p, _)| {
                p.is_empty()
                    || path == p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
            .map(|(_, r)| r)
    }

    /// Every route that is a resource of its own, with its resource.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &Arc<str>)> + '_ {
        self.routes.iter().map(|(p, r)| (p.as_str(), r))
    }

    /// Whether a token with `audience` may be used at a route whose resource is `target`:
    /// its audience names `target` or a resource above it (same scheme, host and port, and a
    /// path prefix at a segment boundary: the origin's resource opens `…/mcp`); an empty
    /// audience counts as the default one.
    pub fn admits_at(&self, audience: &[Arc<str>], target: &str) -> bool {
        let Ok(target) = normalize(target) else {
            return false;
        };
        let default = std::slice::from_ref(self.default_audience());
        let audience = if audience.is_empty() {
            default
        } else {
            audience
        };
        audience
            .iter()
            .filter_map(|a| normalize(a).ok())
            .any(|a| is_at_or_above(&a, &target))
    }

    /// The application's own resource: the audience of tokens whose requests named no
    /// resource, and the audience its protected routes require.
    pub fn default_audience(&self) -> &Arc<str> {
        &self.known[0].0
    }

    /// Every known resource, the application's own first, as configured.
    pub fn known(&self) -> impl Iterator<Item = &str> + '_ {
        self.known.iter().map(|(r, _)| &**r)
    }

    /// The known resource `uri` names, or `invalid_target`.
    pub fn find(&self, uri: &str) -> Result<Arc<str>, OAuthError> {
        let n = normalize(uri).map_err(refusal)?;
        self.known
            .iter()
            .find(|(_, k)| *k == n)
            .map(|(r, _)| r.clone())
            .ok_or_else(|| refusal("the resource is unknown to this authorization server"))
    }

    /// The known resources a request's `resource` parameters name, without repeats, in
    /// order; empty when it names none. Each must be known (`invalid_target`), and at most
    /// [`MAX_RESOURCES_PER_REQUEST`] distinct ones.
    pub fn requested(&self, params: &Params) -> Result<Vec<Arc<str>>, OAuthError> {
        let mut out: Vec<Arc<str>> = Vec::new();
        for v in params.all("resource") {
            let r = self.find(v)?;
            if !out.contains(&r) {
                if out.len() == MAX_RESOURCES_PER_REQUEST {
                    return Err(refusal("too many resources requested"));
                }
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The audience of a token of a grant whose granted resources are `granted` (empty: the
    /// default audience), for a request naming `requested` (already [`Self::requested`]):
    /// the requested subset, or all that was granted; `invalid_target` when the request
    /// names a resource outside the grant (RFC 8707 §2.2: narrow, never widen).
    pub fn narrow(
        &self,
        granted: &[Arc<str>],
        requested: &[Arc<str>],
    ) -> Result<Vec<Arc<str>>, OAuthError> {
        let default = std::slice::from_ref(self.default_audience());
        let granted = if granted.is_empty() { default } else { granted };
        if requested.is_empty() {
            return Ok(granted.to_vec());
        }
        if let Some(r) = requested.iter().find(|r| !granted.contains(r)) {
            return Err(refusal(&format!(
                "the resource {} was not granted to this authorization",
                crate::error::printable(r)
            )));
        }
        Ok(requested.to_vec())
    }

    /// Whether a token with `audience` may be used at the application's own protected
    /// routes (an empty audience counts as the default one).
    pub fn admits(&self, audience: &[Arc<str>]) -> bool {
        audience.is_empty() || audience.contains(self.default_audience())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Resources {
        Resources::new("http://127.0.0.1:8000", ["https://api.example.com/mcp"]).unwrap()
    }

    fn params(q: &str) -> Params {
        Params::parse(q.as_bytes()).unwrap()
    }

    #[test]
    fn scheme_and_host_are_case_insensitive_and_empty_path_is_slash_rfc8707_2() {
        let r = resources();
        for v in [
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/",
            "HTTP://127.0.0.1:8000/",
        ] {
            assert_eq!(&*r.find(v).unwrap(), "http://127.0.0.1:8000", "{v}");
        }
        assert_eq!(
            &*r.find("https://API.example.COM:443/mcp").unwrap(),
            "https://api.example.com/mcp"
        );
        // The path is case-sensitive.
        assert!(r.find("https://api.example.com/MCP").is_err());
    }

    #[test]
    fn relative_fragment_and_unknown_resources_are_invalid_target_rfc8707_2() {
        let r = resources();
        for v in [
            "/mcp",
            "api.example.com",
            "https://api.example.com/mcp#x",
            "https://api.example.com/mcp#",
            "https://other.example.com/",
            "http://127.0.0.1:8001/",
            "https://",
        ] {
            let e = r.find(v).unwrap_err();
            assert_eq!(e.code(), ErrorCode::INVALID_TARGET, "{v}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn requested_resources_repeat_once_and_are_bounded() {
        let r = resources();
        let got = r
            .requested(&params(
                "resource=https%3A%2F%2Fapi.example.com%2Fmcp&resource=http%3A%2F%2F127.0.0.1%3A8000&resource=https%3A%2F%2Fapi.example.com%2Fmcp",
            ))
            .unwrap();
        assert_eq!(got.len(), 2);
        assert!(r.requested(&params("scope=x")).unwrap().is_empty());
        let many: Vec<String> = (0..20).map(|i| format!("https://r{i}.example/")).collect();
        let big = Resources::new("https://own.example/", many.iter().map(String::as_str)).unwrap();
        let q: Vec<String> = many
            .iter()
            .map(|m| {
                format!(
                    "resource={}",
                    percent_encoding::utf8_percent_encode(m, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        let e = big.requested(&params(&q.join("&"))).unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_TARGET);
    }

    #[test]
    fn a_token_request_narrows_never_widens_rfc8707_2_2() {
        let r = resources();
        let own = r.default_audience().clone();
        let api: Arc<str> = Arc::from("https://api.example.com/mcp");
        let both = vec![own.clone(), api.clone()];
        assert_eq!(r.narrow(&both, &[]).unwrap(), both);
        assert_eq!(
            r.narrow(&both, std::slice::from_ref(&api)).unwrap(),
            vec![api.clone()]
        );
        // Nothing granted explicitly: the default audience only.
        assert_eq!(r.narrow(&[], &[]).unwrap(), vec![own.clone()]);
        let e = r.narrow(&[], std::slice::from_ref(&api)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_TARGET);
        let e = r
            .narrow(std::slice::from_ref(&api), std::slice::from_ref(&own))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_TARGET);
    }

    #[test]
    fn the_own_resource_admits_its_audience_and_legacy_records() {
        let r = resources();
        assert!(r.admits(&[]));
        assert!(r.admits(&[Arc::from("http://127.0.0.1:8000")]));
        assert!(!r.admits(&[Arc::from("https://api.example.com/mcp")]));
    }

    #[test]
    fn a_trailing_slash_on_a_path_names_the_same_resource() {
        let r = resources();
        for v in [
            "https://api.example.com/mcp/",
            "HTTPS://api.example.com:443/mcp",
            "https://api.example.com/mcp//",
        ] {
            assert_eq!(&*r.find(v).unwrap(), "https://api.example.com/mcp", "{v}");
        }
        assert_eq!(normalize("https://h/").unwrap(), "https://h/");
    }

    #[test]
    fn a_route_resource_admits_its_own_and_ancestor_audiences_only() {
        let r = Resources::new(
            "http://127.0.0.1:8000",
            ["http://127.0.0.1:8000/mcp", "https://other.example/api"],
        )
        .unwrap()
        .with_routes([("/mcp".to_owned(), "http://127.0.0.1:8000/mcp".to_owned())]);
        assert_eq!(
            r.route_resource("/mcp").map(|a| &**a),
            Some("http://127.0.0.1:8000/mcp")
        );
        assert!(r.route_resource("/mcp/tools").is_some());
        assert!(r.route_resource("/mcpx").is_none());
        assert!(r.route_resource("/clock").is_none());
        let target = "http://127.0.0.1:8000/mcp";
        assert!(r.admits_at(&[], target), "no audience: the origin's");
        assert!(r.admits_at(&[Arc::from("http://127.0.0.1:8000")], target));
        assert!(r.admits_at(&[Arc::from("http://127.0.0.1:8000/mcp")], target));
        assert!(!r.admits_at(&[Arc::from("https://other.example/api")], target));
        assert!(!r.admits_at(&[Arc::from("http://127.0.0.1:8000/mc")], target));
        assert!(!r.admits_at(&[Arc::from("http://127.0.0.1:8001/")], target));
        // A token for the route's resource alone does not open the origin's other routes.
        assert!(!r.admits(&[Arc::from("http://127.0.0.1:8000/mcp")]));
    }

    #[test]
    fn configuration_errors_name_the_value() {
        let e = Resources::new("https://own.example", ["relative/path"]).unwrap_err();
        assert!(e.contains("relative/path"), "{e}");
    }
}
