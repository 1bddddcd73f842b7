//! `POST <base>/device_authorization` (RFC 8628 §3.1) as a toolkit [`FormEndpoint`] over
//! [`crate::endpoint::device_authorization`]; mounted when `[oauth2.device]` is on.

use super::toolkit::FormEndpoint;
use crate::endpoint::{device_authorization, FormRequest};
use crate::error::OAuthError;
use crate::server::AuthorizationServer;

/// The device authorization endpoint; browser-based clients may call it cross-origin.
pub(crate) struct DeviceAuthorizationEndpoint;

#[rocket::async_trait]
impl FormEndpoint for DeviceAuthorizationEndpoint {
    fn cors(&self) -> bool {
        true
    }

    async fn handle(
        &self,
        server: &AuthorizationServer,
        form: FormRequest<'_>,
    ) -> Result<String, OAuthError> {
        device_authorization::handle(server, form)
            .await
            .map(|a| a.to_json())
    }
}
