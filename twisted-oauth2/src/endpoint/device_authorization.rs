//! The device authorization endpoint (RFC 8628 §3.1–3.2): `POST <base>/device_authorization`.
//!
//! The client authenticates as at the token endpoint (a public client sends its
//! `client_id`) and must be allowed the device-code grant; it gets a `device_code`, a
//! `user_code`, the `verification_uri` (and `verification_uri_complete`), `expires_in` and
//! the polling `interval`. See [`crate::device`].

use crate::device::{self, DeviceRecord, GRANT_TYPE};
use crate::endpoint::client_auth::authenticate_for_grant;
use crate::endpoint::FormRequest;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::ClientAuthentication;
use crate::server::AuthorizationServer;
use crate::token::TokenKind;

/// How often a new user code is drawn when the one drawn is in use.
const USER_CODE_ATTEMPTS: usize = 8;

/// The answer of the device authorization endpoint (RFC 8628 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The device verification code (256 bits; the store keeps only its digest).
    pub device_code: String,
    /// The user code as shown (`XXXX-XXXX`).
    pub user_code: String,
    /// Where the user enters the code.
    pub verification_uri: String,
    /// The verification URI with the code, when configured.
    pub verification_uri_complete: Option<String>,
    /// Seconds until both codes expire.
    pub expires_in: u64,
    /// The minimum polling interval in seconds.
    pub interval: u64,
}

impl DeviceAuthorization {
    /// The JSON body.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::json!({
            "device_code": self.device_code,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "expires_in": self.expires_in,
            "interval": self.interval,
        });
        if let Some(c) = &self.verification_uri_complete {
            v["verification_uri_complete"] = c.clone().into();
        }
        v.to_string()
    }
}

/// The `verification_uri` of the configuration: as given when absolute, else under the
/// issuer.
pub fn verification_uri(server: &AuthorizationServer) -> String {
    let uri = &server.config().device.verification_uri;
    if uri.starts_with('/') {
        format!("{}{uri}", server.issuer())
    } else {
        uri.clone()
    }
}

/// Handles a device authorization request.
pub async fn handle(
    server: &AuthorizationServer,
    req: FormRequest<'_>,
) -> Result<DeviceAuthorization, OAuthError> {
    let cfg = &server.config().device;
    let store = device::store(server)?;
    let params = req.params(server)?;
    let auth = authenticate_for_grant(
        server,
        &params,
        req.authorization,
        req.request.client_ip,
        GRANT_TYPE,
        ClientAuthentication::PublicAllowed,
    )
    .await?
    .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
    let ctx = server.context();
    let scope = ctx.resolve_scope(params.get("scope"), &auth.client)?;
    let resources = server.resources().requested(&params)?;
    let now = server.now();
    if store.live(now).await? >= cfg.max_pending {
        log::warn!("twisted-oauth2: device authorization refused: max_pending reached");
        return Err(OAuthError::with_description(
            ErrorCode::TemporarilyUnavailable,
            "too many pending device authorizations; retry later",
        ));
    }
    let device_code = server.new_value(TokenKind::Code)?;
    let digest = crate::client::SecretDigest::of(&device_code).to_hex();
    let record = DeviceRecord::new(
        auth.client.id(),
        scope,
        resources,
        now.saturating_add(cfg.code_lifetime as i64),
        cfg.interval,
    );
    let mut user_code = None;
    for _ in 0..USER_CODE_ATTEMPTS {
        let random = server.new_value(TokenKind::Handle)?;
        let code = device::user_code_from(&random, cfg.user_code_length);
        if store.put_device(&digest, &code, record.clone()).await? {
            user_code = Some(code);
            break;
        }
    }
    let Some(user_code) = user_code else {
        log::warn!("twisted-oauth2: no free user code after {USER_CODE_ATTEMPTS} draws");
        return Err(OAuthError::with_description(
            ErrorCode::TemporarilyUnavailable,
            "no user code is free; retry later",
        ));
    };
    let uri = verification_uri(server);
    let shown = device::display_user_code(&user_code);
    let complete = cfg.verification_uri_complete.then(|| {
        let sep = if uri.contains('?') { '&' } else { '?' };
        format!("{uri}{sep}user_code={shown}")
    });
    Ok(DeviceAuthorization {
        device_code,
        user_code: shown,
        verification_uri: uri,
        verification_uri_complete: complete,
        expires_in: cfg.code_lifetime,
        interval: cfg.interval,
    })
}
