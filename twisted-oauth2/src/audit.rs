//! Audit events: what happened to which client, subject and grant — never a token, code or
//! secret value. An application installs an [`AuditSink`] with
//! [`ServerBuilder::audit`](crate::server::ServerBuilder::audit) (or the fairing's
//! `OAuth2::audit`) to log them, count them or send them to a SIEM.
//!
//! Sinks are called synchronously on the request path: keep them fast (push to a channel
//! or a log), and never block.

use std::sync::Arc;

use crate::storage::GrantId;

/// One security-relevant event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditEvent {
    /// Tokens were issued at the token endpoint (or by the implicit grant).
    TokenIssued {
        /// The client.
        client_id: Arc<str>,
        /// The resource owner, if any.
        subject: Option<Arc<str>>,
        /// The grant (token family).
        grant: GrantId,
        /// The `grant_type` used (`implicit` for the legacy implicit grant).
        grant_type: String,
        /// Whether a refresh token was issued too.
        refresh_token: bool,
    },
    /// A refresh token was rotated for a new access token.
    TokenRefreshed {
        /// The client.
        client_id: Arc<str>,
        /// The resource owner, if any.
        subject: Option<Arc<str>>,
        /// The grant (token family).
        grant: GrantId,
    },
    /// A rotated-out refresh token was presented again inside the
    /// `refresh_token_reuse_interval` after its rotation (a client refreshing in parallel):
    /// fresh tokens of the same family were issued and the family was kept.
    TokenRefreshedWithinReuseInterval {
        /// The client.
        client_id: Arc<str>,
        /// The resource owner, if any.
        subject: Option<Arc<str>>,
        /// The grant (token family).
        grant: GrantId,
    },
    /// A rotated-out refresh token was presented again (after the reuse interval, when
    /// one is configured): the family was revoked (RFC 9700 §4.14.2).
    RefreshReuseDetected {
        /// The client.
        client_id: Arc<str>,
        /// The revoked grant.
        grant: GrantId,
    },
    /// An authorization code was presented again: its tokens were revoked
    /// (RFC 6749 §4.1.2).
    CodeReplayed {
        /// The client that presented it.
        client_id: Arc<str>,
        /// The revoked grant.
        grant: GrantId,
    },
    /// A client revoked a token at the revocation endpoint (RFC 7009).
    Revoked {
        /// The client.
        client_id: Arc<str>,
        /// The grant of the token.
        grant: GrantId,
        /// Whether the whole grant was revoked (a refresh token, or the
        /// `revoke_grant_on_access_token_revocation` policy).
        whole_grant: bool,
    },
    /// Client authentication failed at the token, revocation or introspection endpoint.
    ClientAuthenticationFailed {
        /// The client id presented, if any (it may not exist).
        client_id: Option<String>,
        /// How the client tried: `client_secret_basic`, `client_secret_post` or `none`.
        method: &'static str,
    },
    /// The resource owner allowed an authorization request.
    ConsentGranted {
        /// The client.
        client_id: Arc<str>,
        /// The resource owner.
        subject: Option<Arc<str>>,
        /// The grant the code belongs to.
        grant: GrantId,
    },
    /// The resource owner denied an authorization request.
    ConsentDenied {
        /// The client.
        client_id: Arc<str>,
    },
    /// A brute-force limit refused a request ([`crate::limits`]).
    RateLimited {
        /// The limit (`client_auth`, `user_code`).
        limit: &'static str,
        /// What it counts: a client id, a user, or an address (never a secret or a code).
        key: String,
        /// Seconds until the key may try again.
        retry_after: u64,
    },
    /// A presented access token was refused at a protected route or introspection (the
    /// caller got `invalid_token`, or `active: false`, whatever the reason).
    TokenRejected {
        /// Why ([`Rejection`](crate::format::Rejection)).
        reason: crate::format::Rejection,
        /// The client the token was issued to, when the token could be read.
        client_id: Option<Arc<str>>,
    },
}

impl AuditEvent {
    /// A short name of the event kind, such as `token_issued`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::TokenIssued { .. } => "token_issued",
            AuditEvent::TokenRefreshed { .. } => "token_refreshed",
            AuditEvent::TokenRefreshedWithinReuseInterval { .. } => {
                "token_refreshed_within_reuse_interval"
            }
            AuditEvent::RefreshReuseDetected { .. } => "refresh_reuse_detected",
            AuditEvent::CodeReplayed { .. } => "code_replayed",
            AuditEvent::Revoked { .. } => "revoked",
            AuditEvent::ClientAuthenticationFailed { .. } => "client_authentication_failed",
            AuditEvent::ConsentGranted { .. } => "consent_granted",
            AuditEvent::ConsentDenied { .. } => "consent_denied",
            AuditEvent::RateLimited { .. } => "rate_limited",
            AuditEvent::TokenRejected { .. } => "token_rejected",
        }
    }
}

/// Receives [`AuditEvent`]s.
pub trait AuditSink: Send + Sync + 'static {
    /// Records one event.
    fn record(&self, event: &AuditEvent);
}

/// Writes every event to the `log` crate at `info` (`warn` for reuse and replay), target
/// `twisted_oauth2::audit`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogAudit;

impl AuditSink for LogAudit {
    fn record(&self, event: &AuditEvent) {
        let level = match event {
            AuditEvent::RefreshReuseDetected { .. }
            | AuditEvent::CodeReplayed { .. }
            | AuditEvent::RateLimited { .. } => log::Level::Warn,
            // Unknown and expired tokens are everyday noise (and what a scanner sends).
            AuditEvent::TokenRejected {
                reason: crate::format::Rejection::Unknown | crate::format::Rejection::Expired,
                ..
            } => log::Level::Debug,
            _ => log::Level::Info,
        };
        log::log!(target: "twisted_oauth2::audit", level, "audit {}: {event:?}", event.kind());
    }
}
