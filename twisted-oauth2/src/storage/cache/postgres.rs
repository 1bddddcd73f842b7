//! Revocations over PostgreSQL `LISTEN`/`NOTIFY`, on connections of the channel's own.
//!
//! Every instance listens on the channel [`NOTIFY_CHANNEL`] with one dedicated connection
//! (application name [`LISTENER_APPLICATION_NAME`]) and publishes with `pg_notify` through
//! a small pool of its own. Notifications are database-wide, so instances on one database
//! hear each other whatever their `search_path`.
//!
//! A heartbeat (`p`) is published every second; a listener that hears nothing, not even a
//! heartbeat, for [`LIVENESS`] counts its connection as lost, as it does when the
//! connection closes or errs. A lost listener tells the cache ([`RevocationSink::lost`]) and
//! reconnects with backoff; the cache serves again once `LISTEN` has been confirmed on the
//! new connection.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::{backoff, spawn, Revocation, RevocationChannel, RevocationSink};
use crate::error::{ConfigError, StorageError};

/// The `NOTIFY` channel revocations travel on.
pub const NOTIFY_CHANNEL: &str = "twisted_oauth2_revocations";

/// The `application_name` of the listening connection (as `pg_stat_activity` shows it).
pub const LISTENER_APPLICATION_NAME: &str = "twisted-oauth2 revocation listener";

/// Silence after which the listening connection counts as lost.
pub const LIVENESS: Duration = Duration::from_secs(4);

const HEARTBEAT: Duration = Duration::from_secs(1);
const HEARTBEAT_PAYLOAD: &str = "p";
const TIMEOUT: Duration = Duration::from_secs(5);

/// A [`RevocationChannel`] over PostgreSQL `LISTEN`/`NOTIFY`. See the [module docs](self).
pub struct PgNotifyChannel {
    options: PgConnectOptions,
    publisher: PgPool,
}

impl std::fmt::Debug for PgNotifyChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgNotifyChannel").finish_non_exhaustive()
    }
}

impl PgNotifyChannel {
    /// Opens the publishing pool on the database `url` names (the storage URL). The
    /// listening connection is opened by [`RevocationChannel::start`].
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let options = PgConnectOptions::from_str(url.trim()).map_err(|e| {
            StorageError::other(ConfigError::Setting {
                key: "storage",
                reason: format!("invalid PostgreSQL URL: {e}"),
            })
        })?;
        let publisher = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(TIMEOUT)
            .connect_with(
                options
                    .clone()
                    .application_name("twisted-oauth2 revocation publisher"),
            )
            .await
            .map_err(StorageError::unavailable)?;
        Ok(PgNotifyChannel { options, publisher })
    }
}

#[async_trait]
impl RevocationChannel for PgNotifyChannel {
    fn describe(&self) -> &'static str {
        "PostgreSQL LISTEN/NOTIFY"
    }

    fn start(&self, sink: RevocationSink) -> Result<(), StorageError> {
        spawn(listen(self.options.clone(), sink.clone()))?;
        let publisher = self.publisher.clone();
        spawn(async move {
            while !sink.is_closed() {
                // A failed heartbeat shows as silence at every listener, this one included.
                let _ = notify(&publisher, HEARTBEAT_PAYLOAD).await;
                tokio::time::sleep(HEARTBEAT).await;
            }
        })
    }

    async fn publish(&self, revocation: Revocation) -> Result<(), StorageError> {
        notify(&self.publisher, &revocation.encode()).await
    }
}

async fn notify(pool: &PgPool, payload: &str) -> Result<(), StorageError> {
    let q = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(payload)
        .execute(pool);
    match tokio::time::timeout(TIMEOUT, q).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(StorageError::unavailable(e)),
        Err(e) => Err(StorageError::unavailable(e)),
    }
}

/// A listening connection with `LISTEN` confirmed.
async fn subscribe(options: &PgConnectOptions) -> Result<(PgPool, PgListener), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(TIMEOUT)
        .connect_with(options.clone().application_name(LISTENER_APPLICATION_NAME))
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    // A lost connection ends this listener; the loop below opens the next one itself.
    listener.eager_reconnect(false);
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok((pool, listener))
}

async fn listen(options: PgConnectOptions, sink: RevocationSink) {
    let mut attempt = 0u32;
    while !sink.is_closed() {
        match tokio::time::timeout(TIMEOUT, subscribe(&options)).await {
            Ok(Ok((pool, mut listener))) => {
                if attempt > 0 {
                    log::info!("twisted-oauth2: validation cache: LISTEN re-established");
                }
                attempt = 0;
                sink.subscribed();
                loop {
                    match tokio::time::timeout(LIVENESS, listener.try_recv()).await {
                        Ok(Ok(Some(n))) => match n.payload() {
                            HEARTBEAT_PAYLOAD => {}
                            p => match Revocation::decode(p) {
                                Some(r) => sink.deliver(r),
                                None => sink.deliver_unreadable(),
                            },
                        },
                        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
                    }
                    if sink.is_closed() {
                        return;
                    }
                }
                sink.lost();
                log::warn!(
                    "twisted-oauth2: validation cache: the LISTEN connection was lost; every \
                     lookup goes to the store until it is back"
                );
                // Closing politely may wait on a dead socket: do it aside, bounded.
                drop(listener);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(TIMEOUT, pool.close()).await;
                });
            }
            Ok(Err(e)) => {
                if attempt == 0 {
                    log::warn!("twisted-oauth2: validation cache: cannot LISTEN: {e}");
                }
            }
            Err(_) => {
                if attempt == 0 {
                    log::warn!("twisted-oauth2: validation cache: LISTEN timed out");
                }
            }
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}
