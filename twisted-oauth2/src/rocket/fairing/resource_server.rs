//! The fairing's resource-server-only mode ([`OAuth2::resource_server`](super::OAuth2::resource_server), or an
//! `[oauth2.resource_server]` table): no authorization server is built, nothing is mounted
//! under the endpoints' path, no consent hook and no store are needed. Protected routes
//! validate with the validator; the RFC 9728 document names the validator's
//! authorization servers.

use std::sync::Arc;

use rocket::fairing;
use rocket::{Build, Orbit, Rocket};

use super::{cors_preflights, route_paths, Parts};
use crate::config::ServerConfig;
use crate::endpoint::metadata::{well_known_path, well_known_url, PROTECTED_RESOURCE_SUFFIX};
use crate::rocket::routes::{mountable, RemoteResourceMetadataHandler};
use crate::rocket::OAuth2State;
use crate::validation::TokenValidator;

/// What the resource-server banner says, decided at ignite.
struct ResourceServerInfo {
    lines: Vec<String>,
    allow_http: bool,
}

/// The first setting that belongs to an authorization server of our own, which this mode
/// does not build.
fn incompatible(parts: &Parts, config: &ServerConfig) -> Option<String> {
    const FIX: &str = "the fairing runs in resource-server-only mode (OAuth2::resource_server or \
                       [oauth2.resource_server]), which builds no authorization server";
    let code = [
        (
            parts.on_authenticate.is_some(),
            "a consent hook (on_authenticate, builtin_consent, builtin_login)",
        ),
        (parts.device_page.is_some(), "OAuth2::device_verification"),
        (
            !parts.endpoints.is_empty(),
            "extension endpoints (OAuth2::endpoint)",
        ),
        (parts.builder.has_stores(), "stores (OAuth2::stores)"),
    ];
    if let Some((_, what)) = code.iter().find(|(set, _)| *set) {
        return Some(format!("{what} is set but {FIX}: remove it"));
    }
    let keys = [
        (!config.issuer.trim().is_empty(), "oauth2.issuer"),
        (!config.clients.is_empty(), "oauth2.clients"),
        (config.registration.enabled, "oauth2.registration.enabled"),
        (config.device.enabled, "oauth2.device.enabled"),
        (
            config.client_metadata.enabled,
            "oauth2.client_metadata.enabled",
        ),
        (config.signing_keys.enabled, "oauth2.signing_keys.enabled"),
        (config.storage.trim() != "memory", "oauth2.storage"),
    ];
    if let Some((_, key)) = keys.iter().find(|(set, _)| *set) {
        let hint = if *key == "oauth2.issuer" {
            "; the external issuer goes in oauth2.resource_server.issuer"
        } else {
            ""
        };
        return Some(format!(
            "invalid configuration `{key}`: it configures an authorization server of our own, \
             but {FIX}: remove it{hint}"
        ));
    }
    None
}

/// The validator and its banner lines; `None` after logging why not.
async fn validator(
    parts: &mut Parts,
    config: &ServerConfig,
) -> Option<(Arc<dyn TokenValidator>, ResourceServerInfo)> {
    match (parts.validator.take(), &config.resource_server) {
        (Some(_), Some(_)) => {
            log::error!(
                "twisted-oauth2: a token validator was given in code (OAuth2::resource_server or \
                 OAuth2::token_validator) and [oauth2.resource_server] is set: keep one"
            );
            None
        }
        (Some(v), None) => Some((
            v,
            ResourceServerInfo {
                lines: vec!["  validator:  the application's own TokenValidator".to_owned()],
                allow_http: false,
            },
        )),
        (None, Some(rs)) => from_config(rs, config, parts.clock.clone()).await,
        (None, None) => {
            log::error!("twisted-oauth2: resource-server-only mode without a token validator");
            None
        }
    }
}

#[cfg(feature = "resource-server")]
async fn from_config(
    rs: &crate::config::ResourceServerConfig,
    config: &ServerConfig,
    clock: Option<Arc<dyn crate::clock::Clock>>,
) -> Option<(Arc<dyn TokenValidator>, ResourceServerInfo)> {
    use crate::remote::{RemoteError, RemoteValidator};
    let built = RemoteValidator::from_config(rs, config).and_then(|b| match clock {
        Some(c) => b.clock(c).build(),
        None => b.build(),
    });
    let v = match built {
        Ok(v) => v,
        Err(e) => {
            log::error!("twisted-oauth2: invalid configuration: {e}");
            return None;
        }
    };
    match v.prepare().await {
        Ok(()) => {}
        Err(RemoteError::Misconfigured(m)) => {
            log::error!(
                "twisted-oauth2: invalid configuration `oauth2.resource_server`: the issuer {}: {m}",
                v.issuer()
            );
            return None;
        }
        Err(e) => log::warn!(
            "twisted-oauth2: the issuer {} cannot be used now ({e}); launching anyway: protected \
             routes answer 503 temporarily_unavailable until it can",
            v.issuer()
        ),
    }
    let info = ResourceServerInfo {
        lines: v.describe(),
        allow_http: v.allows_http(),
    };
    Some((Arc::new(v), info))
}

#[cfg(not(feature = "resource-server"))]
async fn from_config(
    _rs: &crate::config::ResourceServerConfig,
    _config: &ServerConfig,
    _clock: Option<Arc<dyn crate::clock::Clock>>,
) -> Option<(Arc<dyn TokenValidator>, ResourceServerInfo)> {
    log::error!(
        "twisted-oauth2: [oauth2.resource_server] needs the `resource-server` cargo feature of \
         twisted-oauth2 (features = [\"resource-server\"])"
    );
    None
}

/// Ignite in resource-server-only mode.
pub(super) async fn ignite(
    rocket: Rocket<Build>,
    mut parts: Parts,
    config: ServerConfig,
) -> fairing::Result {
    if let Some(e) = incompatible(&parts, &config) {
        log::error!("twisted-oauth2: {e}");
        return Err(rocket);
    }
    if let Some(rs) = &config.resource_server {
        if let Err(e) = rs.validate() {
            log::error!("twisted-oauth2: invalid configuration: {e}");
            return Err(rocket);
        }
    }
    let Some((validator, info)) = validator(&mut parts, &config).await else {
        return Err(rocket);
    };
    let resource = validator.protected_resource();
    let origin_policy = match crate::origin::OriginPolicy::new(
        &config,
        resource.iter().map(|r| r.resource.as_str()),
    ) {
        Ok(p) => p,
        Err(e) => {
            log::error!("twisted-oauth2: invalid configuration: {e}");
            return Err(rocket);
        }
    };
    let mut well_known = Vec::new();
    let resource_metadata = match resource {
        Some(r) => {
            let path = well_known_path(&r.resource, PROTECTED_RESOURCE_SUFFIX);
            if !mountable(&path) {
                log::error!(
                    "twisted-oauth2: invalid configuration: the well-known path `{}` derived \
                     from the resource `{}` cannot be mounted",
                    crate::error::printable(&path),
                    crate::error::printable(&r.resource)
                );
                return Err(rocket);
            }
            let url = well_known_url(&r.resource, PROTECTED_RESOURCE_SUFFIX);
            well_known.push(rocket::Route::new(
                rocket::http::Method::Get,
                &path,
                RemoteResourceMetadataHandler(Arc::new(r)),
            ));
            well_known.push(rocket::Route::new(
                rocket::http::Method::Options,
                &path,
                crate::rocket::Preflight::new("GET, OPTIONS"),
            ));
            url
        }
        None => String::new(),
    };
    let Some(preflights) = cors_preflights(&parts) else {
        return Err(rocket);
    };
    let (origin_paths, cors_paths) = route_paths(parts.cors_routes, parts.origin_paths);
    let state = OAuth2State {
        server: None,
        validator,
        scopes_used: Default::default(),
        scope_routes: Default::default(),
        resource_metadata,
        realm: config.realm.clone(),
        origin_policy,
        cors_allowed_origins: config.cors_allowed_origins.clone(),
        origin_paths,
        cors_paths,
    };
    Ok(rocket
        .manage(state)
        .manage(info)
        .mount("/", well_known)
        .mount("/", preflights))
}

/// The launch banner and warnings of resource-server-only mode.
pub(super) fn liftoff(rocket: &Rocket<Orbit>, state: &OAuth2State) {
    let Some(info) = rocket.state::<ResourceServerInfo>() else {
        return;
    };
    let mut lines =
        vec!["twisted-oauth2 resource server (no authorization server of its own)".to_owned()];
    lines.extend(info.lines.iter().cloned());
    lines.push(if state.resource_metadata_url().is_empty() {
        "  metadata:   none (the validator describes no protected resource)".to_owned()
    } else {
        format!("  metadata:   GET {}", state.resource_metadata_url())
    });
    lines.push(state.origin_check_line());
    let scopes = state.scopes_used();
    if !scopes.is_empty() {
        lines.push(format!(
            "  protected routes require: {}",
            scopes.into_iter().collect::<Vec<_>>().join(" ")
        ));
    }
    log::info!("{}", lines.join("\n"));
    let policy = state.validator().request_policy();
    if info.allow_http {
        log::warn!(
            "twisted-oauth2: INSECURE: resource_server.allow_http = true: the issuer is reached \
             over plain HTTP and tokens are accepted over plain HTTP. Development only; never \
             use this setting in production."
        );
    } else if !rocket.config().tls_enabled() && policy.trusted_proxy_header.is_none() {
        log::warn!(
            "twisted-oauth2: TLS is off and no trusted_proxy_header is set: every request to a \
             protected route over plain HTTP will be refused with invalid_request"
        );
    }
    if policy.allow_access_token_in_query {
        log::warn!("twisted-oauth2: access tokens are accepted in URL queries (RFC 6750 section 2.3 discourages this)");
    }
}
