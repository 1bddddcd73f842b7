//! The device-code grant (RFC 8628 §3.4–3.5): the device polls the token endpoint with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` and its `device_code` until the
//! user decided. Built on the public [`Grant`] seam, registered when `[oauth2.device]` is on.
//!
//! Answers, in this order: an unknown code, or one issued to another client, is
//! `invalid_grant`; an expired one `expired_token`; a poll sooner than the interval
//! `slow_down` (and the interval of that device code grows by 5 seconds); an undecided one
//! `authorization_pending`; a denied one `access_denied`; an approved one is taken (exactly
//! one poller wins) and gets tokens as for the code grant: a refresh token, the audience of
//! its resources. When issuance then fails for another reason than a revoked grant (a
//! store outage, a failing format or hook), the approval is given back ([`ReleaseDevice`])
//! so the device's next poll gets it again.

use std::sync::Arc;

use async_trait::async_trait;

use crate::context::GrantContext;
use crate::device::{DeviceStatus, PollOutcome, GRANT_TYPE};
use crate::error::StorageError;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::{Grant, GrantRequest, Issue, ReleaseOnFailure};

/// The device-code grant.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeviceCodeGrant;

/// Gives back a device approval a poll took
/// ([`DeviceCodeStore::release_device`](crate::device::DeviceCodeStore::release_device)),
/// keyed by the SHA-256 hex digest of the device code.
#[derive(Debug, Clone)]
pub struct ReleaseDevice(pub String);

#[async_trait]
impl ReleaseOnFailure for ReleaseDevice {
    async fn release(&self, ctx: &GrantContext<'_>) -> Result<(), StorageError> {
        if let Some(store) = ctx.stores().device_codes.as_ref() {
            store.release_device(&self.0, ctx.now()).await?;
        }
        Ok(())
    }
}

/// The description of every refused device code (no oracle on which case it was).
const INVALID_CODE: &str = "the device_code is invalid";

#[async_trait]
impl Grant for DeviceCodeGrant {
    fn grant_type(&self) -> &str {
        GRANT_TYPE
    }

    async fn handle(
        &self,
        ctx: &GrantContext<'_>,
        req: &GrantRequest<'_>,
    ) -> Result<Issue, OAuthError> {
        let client = req.client()?;
        let code = req.params.require("device_code")?;
        let Some(store) = ctx.stores().device_codes.as_ref() else {
            return Err(OAuthError::with_description(
                ErrorCode::UnsupportedGrantType,
                "the grant type is not supported by this server",
            ));
        };
        if code.len() > 256 {
            return Err(OAuthError::invalid_grant(INVALID_CODE));
        }
        let digest = crate::client::SecretDigest::of(code).to_hex();
        let record = match store.poll(&digest, client.id(), ctx.now()).await? {
            PollOutcome::Unknown | PollOutcome::WrongClient => {
                return Err(OAuthError::invalid_grant(INVALID_CODE))
            }
            PollOutcome::Expired => {
                return Err(OAuthError::with_description(
                    ErrorCode::EXPIRED_TOKEN,
                    "the device_code has expired",
                ))
            }
            PollOutcome::SlowDown => {
                return Err(OAuthError::with_description(
                    ErrorCode::SLOW_DOWN,
                    "polling too often: wait 5 seconds longer between requests",
                ))
            }
            PollOutcome::Pending => return Err(OAuthError::new(ErrorCode::AUTHORIZATION_PENDING)),
            PollOutcome::Denied => {
                return Err(OAuthError::with_description(
                    ErrorCode::AccessDenied,
                    "the user denied the request",
                )
                .with_status(400))
            }
            PollOutcome::Approved(r) => r,
        };
        let DeviceStatus::Approved { subject, scope } = record.status else {
            return Err(OAuthError::invalid_grant(INVALID_CODE));
        };
        let resources = ctx.resources();
        let audience = resources.narrow(&record.resources, req.resources)?;
        let granted = resources.narrow(&record.resources, &[])?;
        Ok(Issue::new(scope)
            .subject(subject)
            .with_refresh_token(true)
            .audience(audience)
            .granted_resources(granted)
            .release_on_failure(Arc::new(ReleaseDevice(digest))))
    }
}
