//! Launch checks of the fairing for the setups MCP servers use: a consent hook wherever
//! clients can arrive for the authorization code grant, the route scopes the server can
//! issue, configuration errors with "did you mean", and the banner lines that say what is
//! served. Each check is one function the fairing calls with one line.

use rocket::figment::error::Kind;

use super::OAuth2State;
use crate::config::ServerConfig;
use crate::grant_type::{did_you_mean, GrantType};
use crate::server::AuthorizationServer;

/// The two ways to serve `/authorize`, as the abort messages name them.
const CONSENT_FIXES: &str = "add `.builtin_consent(..)` (the library's consent page, with \
     `.builtin_login(..)` for a sign-in form) or `.on_authenticate(..)` (a consent page of your \
     own) to OAuth2::fairing(); see docs/consent.md";

/// Refuses a configuration under which clients arrive for the authorization code grant while
/// no consent hook is set, so that `/authorize` would not exist: a configured client with a
/// redirect grant, client ID metadata documents (which serve only that grant), or dynamic
/// client registration offering `authorization_code`. The error names both fixes.
pub(crate) fn consent_hook(config: &ServerConfig, has_hook: bool) -> Result<(), String> {
    if has_hook {
        return Ok(());
    }
    let code = config
        .grant_types
        .iter()
        .any(|g| GrantType::AUTHORIZATION_CODE == g.as_str());
    if config.client_metadata.enabled {
        return Err(format!(
            "client ID metadata documents are on (oauth2.client_metadata.enabled) but no consent \
             hook is set, so /authorize would not exist and no such client could sign in: \
             {CONSENT_FIXES}"
        ));
    }
    if !code {
        return Ok(());
    }
    if config.registration.enabled {
        return Err(format!(
            "dynamic client registration is on (oauth2.registration.enabled) and registers \
             authorization_code clients, but no consent hook is set, so /authorize would not \
             exist: {CONSENT_FIXES}; or remove authorization_code from oauth2.grant_types to \
             register client_credentials clients only"
        ));
    }
    if let Some(c) = config.clients.iter().find(|c| {
        c.grant_types
            .iter()
            .any(|g| GrantType::new(g.clone()).uses_redirect())
    }) {
        return Err(format!(
            "client `{}` may use the authorization code grant but no consent hook is set, so \
             /authorize would not exist: {CONSENT_FIXES}; or remove the grant from the client",
            crate::error::printable(&c.id)
        ));
    }
    Ok(())
}

/// The ` (did you mean ...?)` tail for an unknown name, or nothing.
pub(crate) fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// A figment error's kind in words: unknown keys and variants with "did you mean" and the
/// list of valid names (each in its own backticks, never nested), every other kind as
/// figment says it.
pub(crate) fn describe_kind(kind: &Kind) -> String {
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        Kind::UnknownField(found, expected) => format!(
            "unknown key `{}`{}; the keys here are {}",
            crate::error::printable(found),
            suggestion(found, expected.iter().copied()),
            list(expected)
        ),
        Kind::UnknownVariant(found, expected) => format!(
            "unknown value `{}`{}; valid are {}",
            crate::error::printable(found),
            suggestion(found, expected.iter().copied()),
            list(expected)
        ),
        other => other.to_string(),
    }
}

/// Refuses a route scope the server would refuse to issue: with `scopes_supported` set, a
/// scope token that is neither listed nor included by a listed scope (`scope_includes`).
/// Such a scope would be advertised in the RFC 9728 document although every authorization
/// request naming it gets `invalid_scope`, and every token 403. Returns the abort line.
pub(crate) fn route_scope(state: &OAuth2State, scope: &str, marker: &str) -> Option<String> {
    let server = state.server()?;
    let supported = server.config().scopes_supported.as_ref()?;
    let missing: Vec<&str> = scope
        .split(' ')
        .filter(|t| !t.is_empty())
        .filter(|t| {
            !supported.iter().any(|s| s == t)
                && !server
                    .scope_hierarchy()
                    .including(t)
                    .any(|i| supported.iter().any(|s| s == i))
        })
        .collect();
    let first = missing.first()?;
    let short = marker.rsplit("::").next().unwrap_or(marker);
    let who = match short.strip_prefix("__TwistedOAuth2Scope_") {
        Some(handler) => format!("route `{handler}`"),
        None => format!("the guards of `{short}`"),
    };
    Some(format!(
        "{who} requires scope `{first}`, which is not in oauth2.scopes_supported: the \
         authorization server refuses to issue it, so every token would get 403; add it to \
         scopes_supported{}, or to the scope_includes of a supported scope",
        suggestion(first, supported.iter().map(String::as_str))
    ))
}

/// How `/authorize` is served, for the banner.
#[derive(Debug, Clone)]
pub(crate) enum AuthorizeBy {
    /// No consent hook: no `/authorize`.
    Nothing,
    /// An application's [`OnAuthenticate`](super::OnAuthenticate) hook.
    Hook,
    /// The built-in consent page, signing in at this URL.
    BuiltinConsent { login: String },
}

impl AuthorizeBy {
    /// From the fairing's parts: whether a hook is set, and the built-in consent if it is
    /// that.
    pub(crate) fn of(
        (hook, builtin): (bool, Option<std::sync::Arc<super::builtin_consent::Inner>>),
    ) -> Self {
        match (hook, builtin) {
            (_, Some(inner)) => AuthorizeBy::BuiltinConsent {
                login: inner.login_url().to_owned(),
            },
            (true, None) => AuthorizeBy::Hook,
            (false, None) => AuthorizeBy::Nothing,
        }
    }
}

/// The banner lines that say what is served: `/authorize` and by what, registration, client
/// ID metadata documents and the Origin policy of checked routes.
pub(crate) fn served_lines(
    server: &AuthorizationServer,
    state: &OAuth2State,
    authorize: &AuthorizeBy,
    has_authorize: bool,
) -> Vec<String> {
    let cfg = server.config();
    let mut lines = Vec::new();
    lines.push(match (authorize, has_authorize) {
        (AuthorizeBy::BuiltinConsent { login }, true) => format!(
            "  authorize:  GET|POST {} (built-in consent page; sign-in at {login})",
            server.endpoint_url("authorize")
        ),
        (_, true) => format!(
            "  authorize:  GET|POST {} (on_authenticate hook)",
            server.endpoint_url("authorize")
        ),
        (_, false) => "  authorize:  off (no consent hook: no authorization code grant)".to_owned(),
    });
    let reg = &cfg.registration;
    lines.push(if !reg.enabled {
        "  registration: off".to_owned()
    } else {
        let access = if reg.initial_access_token_sha256.is_some() {
            "with an initial access token"
        } else {
            "open"
        };
        let advertised = if has_authorize {
            ""
        } else {
            ", not advertised (no /authorize)"
        };
        format!(
            "  registration: POST {} ({access}{advertised})",
            server.endpoint_url("register")
        )
    });
    let md = &cfg.client_metadata;
    lines.push(match (md.enabled, md.allowed_hosts.is_empty()) {
        (false, _) => "  client metadata documents: off".to_owned(),
        (true, true) => "  client metadata documents: on (any https host)".to_owned(),
        (true, false) => format!(
            "  client metadata documents: on (hosts {})",
            md.allowed_hosts.join(", ")
        ),
    });
    lines.push(state.origin_check_line());
    lines
}

/// The grant types the banner lists: those the token endpoint serves and a client can use
/// (the authorization code grant only with `/authorize`), as the metadata says.
pub(crate) fn grants_line(server: &AuthorizationServer, has_authorize: bool) -> String {
    let doc = crate::endpoint::metadata::authorization_server_metadata(server, has_authorize);
    format!("  grants:     {}", doc.grant_types_supported.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_get_a_suggestion_and_far_words_none() {
        let keys = ["enabled", "allow_loopback", "allow_localhost"];
        assert_eq!(did_you_mean("enable", keys), Some("enabled"));
        assert_eq!(
            did_you_mean("allow_localhst", keys),
            Some("allow_localhost")
        );
        assert_eq!(did_you_mean("storage", keys), None);
        let grants = ["authorization_code", "refresh_token", "client_credentials"];
        assert_eq!(
            did_you_mean("client-credentials", grants),
            Some("client_credentials")
        );
        assert_eq!(did_you_mean("refresh", grants), None);
    }

    #[test]
    fn unknown_keys_are_described_without_nested_backticks() {
        let text = describe_kind(&Kind::UnknownField(
            "enable".into(),
            &["enabled", "allow_loopback"],
        ));
        assert_eq!(
            text,
            "unknown key `enable` (did you mean `enabled`?); the keys here are `enabled`, `allow_loopback`"
        );
        assert!(!text.contains("``") && !text.contains("`one of"), "{text}");
    }

    #[test]
    fn registration_or_metadata_documents_without_a_hook_name_both_fixes() {
        let mut cfg = ServerConfig::default();
        cfg.registration.enabled = true;
        let e = consent_hook(&cfg, false).unwrap_err();
        assert!(
            e.contains("`.builtin_consent(..)`") && e.contains("`.on_authenticate(..)`"),
            "{e}"
        );
        assert!(consent_hook(&cfg, true).is_ok());
        // Registration of client_credentials clients only needs no /authorize.
        cfg.grant_types = vec!["client_credentials".into()];
        assert!(consent_hook(&cfg, false).is_ok());
        cfg.client_metadata.enabled = true;
        let e = consent_hook(&cfg, false).unwrap_err();
        assert!(e.starts_with("client ID metadata documents are on"), "{e}");
    }
}
