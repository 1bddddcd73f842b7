//! The fairing's signing keys (`oauth2.signing_keys`, feature `jwt`): the [`KeyRing`] is
//! made at ignite and put in the server's keys slot, filled from the store before launch
//! (a wrong key-encryption key or a bad key aborts the launch), served at
//! `GET <base>/jwks`, and rotated by a background task beside the purge loop.
//!
//! The JWKS route is built only from the public toolkit, as a downstream crate would
//! build it: the server from [`toolkit::server`], the ring from its keys slot
//! ([`crate::endpoint::jwks::key_ring`]), the preflight [`toolkit::Preflight`].

use std::sync::Arc;
use std::time::Duration;

use rocket::data::Data;
use rocket::http::{ContentType, Header, Method, Status};
use rocket::request::Request;
use rocket::route::{Handler, Outcome, Route};

use super::toolkit;
use crate::config::ServerConfig;
use crate::endpoint::jwks::{self, JWKS_ENDPOINT, JWK_SET_MEDIA_TYPE};
use crate::format::FormatKeys;
use crate::jwt::KeyRing;
use crate::server::{AuthorizationServer, ServerBuilder};
use crate::storage::SigningKeyStore;

/// `GET <base>/jwks`: the ring's JWK Set with `Cache-Control` from the rotation schedule
/// and `Access-Control-Allow-Origin: *`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JwksHandler;

#[rocket::async_trait]
impl Handler for JwksHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r> {
        let Some(ring) = toolkit::server(req).and_then(|s| jwks::key_ring(s)) else {
            return Outcome::Forward((_data, Status::NotFound));
        };
        let doc = jwks::jwks(ring);
        let body = doc.body;
        let media = ContentType::parse_flexible(JWK_SET_MEDIA_TYPE).unwrap_or(ContentType::JSON);
        let res = rocket::Response::build()
            .status(Status::Ok)
            .header(media)
            .header(Header::new("Cache-Control", doc.cache_control))
            .header(Header::new("Access-Control-Allow-Origin", "*"))
            .sized_body(body.len(), std::io::Cursor::new(body.as_bytes().to_vec()))
            .finalize();
        Outcome::Success(res)
    }
}

/// The JWKS routes, under the endpoints' base path.
pub(crate) fn routes() -> Vec<Route> {
    let path = format!("/{JWKS_ENDPOINT}");
    vec![
        Route::new(Method::Get, &path, JwksHandler),
        Route::new(
            Method::Options,
            &path,
            toolkit::Preflight::new("GET, OPTIONS"),
        ),
    ]
}

/// Ignite step, before the server is built: with `signing_keys.enabled`, the ring of
/// the (valid) configuration on the server's clock, put in the keys slot. `Err` is the
/// abort message. A configuration that does not validate is left to the build to report.
pub(crate) fn make_ring(
    config: &ServerConfig,
    builder: &mut ServerBuilder,
) -> Result<Option<KeyRing>, String> {
    if !config.signing_keys.enabled || config.validate().is_err() {
        return Ok(None);
    }
    if builder.has_format_keys() {
        return Err(
            "oauth2.signing_keys is on, but the keys slot was filled in code \
             (ServerBuilder::format_keys): turn one of them off"
                .into(),
        );
    }
    let ring =
        KeyRing::from_config(config, builder.clock_or_system()).map_err(|e| e.to_string())?;
    Ok(Some(ring))
}

/// The ring's keys slot.
pub(crate) fn slot(ring: &KeyRing) -> FormatKeys {
    FormatKeys::new(ring.clone())
}

/// The store generated keys are kept in: the stores' `SigningKeyStore` slot.
fn key_store(server: &AuthorizationServer) -> Option<Arc<dyn SigningKeyStore>> {
    server.stores().get::<dyn SigningKeyStore>()
}

/// Ignite step, after the server is built: the first refresh (the keys of this period and
/// the next exist and the signing ones are unsealed). `Err` is the abort message.
pub(crate) async fn start(server: &AuthorizationServer) -> Result<(), String> {
    let Some(ring) = jwks::key_ring(server) else {
        return Ok(());
    };
    let store = key_store(server);
    ring.refresh(store.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    if ring.signer().is_none() {
        return Err("no signing key covers the current time after loading the keys".into());
    }
    Ok(())
}

/// Liftoff step: the rotation task of generated keys, until shutdown. It refreshes at
/// each change of the schedule and at least every minute; a failed refresh keeps the
/// keys it had (the next key was published a period ahead) and is logged.
pub(crate) fn spawn_rotation(server: Arc<AuthorizationServer>, shutdown: rocket::Shutdown) {
    let Some(ring) = jwks::key_ring(&server).cloned() else {
        return;
    };
    if !ring.is_generated() {
        return;
    }
    rocket::tokio::spawn(async move {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let wait = ring.refresh_in().unwrap_or(60);
            rocket::tokio::select! {
                _ = &mut shutdown => break,
                _ = rocket::tokio::time::sleep(Duration::from_secs(wait)) => {
                    let store = key_store(&server);
                    if let Err(e) = ring.refresh(store.as_deref()).await {
                        log::warn!("twisted-oauth2: signing-key rotation failed: {e}");
                    }
                }
            }
        }
    });
}

/// The banner line.
pub(crate) fn banner_line(server: &AuthorizationServer) -> Option<String> {
    let ring = jwks::key_ring(server)?;
    let how = match ring.schedule() {
        Some(s) => format!("generated, rotated every {} s", s.period),
        None => "configured".to_owned(),
    };
    let kid = ring
        .signer()
        .map(|s| {
            format!(
                "{} {}",
                crate::jwt::keys::algorithm_name(s.algorithm()),
                s.kid()
            )
        })
        .unwrap_or_default();
    Some(format!(
        "  jwks:       GET {} ({how}; signing with {kid})",
        jwks::jwks_uri(server)
    ))
}
