//! Revocations over Redis pub/sub, on connections of the channel's own.
//!
//! Every instance subscribes to `<key_prefix>revocations` (the storage URL's `key_prefix`,
//! default `oauth2:`, so stores with different prefixes do not hear each other) on one
//! dedicated connection and publishes through a reconnecting connection of its own.
//!
//! On a Redis Cluster (`redis+cluster://`), whose classic pub/sub reaches every node, the
//! subscriber uses one node at a time (the next one after each loss) and the publisher the
//! first node that answers.
//!
//! A heartbeat (`p`) is published every second; a subscriber that hears nothing, not even a
//! heartbeat, for [`LIVENESS`] counts its connection as lost, as it does when the
//! connection closes (`CLIENT KILL TYPE pubsub`, a restart). A lost subscriber tells the
//! cache ([`RevocationSink::lost`]) and reconnects with backoff; the cache serves again once
//! `SUBSCRIBE` has been confirmed on the new connection.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use async_trait::async_trait;
use futures_util::StreamExt;

use super::{backoff, spawn, Revocation, RevocationChannel, RevocationSink};
use crate::error::{ConfigError, StorageError};

/// Silence after which the subscribed connection counts as lost.
pub const LIVENESS: Duration = Duration::from_secs(4);

const HEARTBEAT: Duration = Duration::from_secs(1);
const HEARTBEAT_PAYLOAD: &str = "p";
const TIMEOUT: Duration = Duration::from_secs(5);

/// A [`RevocationChannel`] over Redis pub/sub. See the [module docs](self).
pub struct RedisPubSubChannel {
    /// One client per node (one for a single server); the subscriber rotates through them.
    clients: Vec<::redis::Client>,
    publisher: ConnectionManager,
    channel: String,
}

impl std::fmt::Debug for RedisPubSubChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPubSubChannel")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisPubSubChannel {
    /// Opens the publishing connection to the server `url` names (the storage URL, whose
    /// `key_prefix` names the channel). The subscribed connection is opened by
    /// [`RevocationChannel::start`].
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let url = url.trim();
        let (nodes, prefix) = if crate::storage::redis::is_cluster_url(url) {
            let (nodes, prefix) = crate::storage::redis::parse_cluster_url(url)?;
            (nodes, prefix.unwrap_or_else(|| "oauth2:".to_owned()))
        } else {
            let (url, prefix) = split_prefix(url);
            (vec![url], prefix)
        };
        let mut clients = Vec::with_capacity(nodes.len());
        for node in &nodes {
            clients.push(::redis::Client::open(node.as_str()).map_err(|e| {
                StorageError::other(ConfigError::Setting {
                    key: "storage",
                    reason: format!("invalid Redis URL: {e}"),
                })
            })?);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let mut last = None;
        for client in &clients {
            let publisher = ConnectionManager::new_with_config(client.clone(), config.clone());
            match tokio::time::timeout(TIMEOUT, publisher).await {
                Ok(Ok(publisher)) => {
                    return Ok(RedisPubSubChannel {
                        clients,
                        publisher,
                        channel: format!("{prefix}revocations"),
                    })
                }
                Ok(Err(e)) => last = Some(StorageError::unavailable(e)),
                Err(e) => last = Some(StorageError::unavailable(e)),
            }
        }
        Err(last.unwrap_or_else(|| {
            StorageError::other(ConfigError::Setting {
                key: "storage",
                reason: "a Redis URL names no server".into(),
            })
        }))
    }

    /// The pub/sub channel revocations travel on.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

/// The URL without its `key_prefix` query parameter, and the prefix (default `oauth2:`).
fn split_prefix(url: &str) -> (String, String) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), "oauth2:".to_owned());
    };
    let mut prefix = "oauth2:".to_owned();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("key_prefix=") {
            Some(v) => {
                prefix = percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            }
            None => kept.push(pair),
        }
    }
    if kept.is_empty() {
        (base.to_owned(), prefix)
    } else {
        (format!("{base}?{}", kept.join("&")), prefix)
    }
}

#[async_trait]
impl RevocationChannel for RedisPubSubChannel {
    fn describe(&self) -> &'static str {
        "Redis pub/sub"
    }

    fn start(&self, sink: RevocationSink) -> Result<(), StorageError> {
        spawn(subscribe_loop(
            self.clients.clone(),
            self.channel.clone(),
            sink.clone(),
        ))?;
        let (mut publisher, channel) = (self.publisher.clone(), self.channel.clone());
        spawn(async move {
            while !sink.is_closed() {
                // A failed heartbeat shows as silence at every subscriber, this one included.
                let _ = publish(&mut publisher, &channel, HEARTBEAT_PAYLOAD).await;
                tokio::time::sleep(HEARTBEAT).await;
            }
        })
    }

    async fn publish(&self, revocation: Revocation) -> Result<(), StorageError> {
        let mut c = self.publisher.clone();
        publish(&mut c, &self.channel, &revocation.encode()).await
    }
}

async fn publish(
    c: &mut ConnectionManager,
    channel: &str,
    payload: &str,
) -> Result<(), StorageError> {
    let mut cmd = ::redis::cmd("PUBLISH");
    cmd.arg(channel).arg(payload);
    match tokio::time::timeout(TIMEOUT, cmd.query_async::<i64>(c)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(StorageError::unavailable(e)),
        Err(e) => Err(StorageError::unavailable(e)),
    }
}

async fn subscribe(
    client: &::redis::Client,
    channel: &str,
) -> ::redis::RedisResult<::redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

async fn subscribe_loop(clients: Vec<::redis::Client>, channel: String, sink: RevocationSink) {
    let mut attempt = 0u32;
    let mut node = 0usize;
    while !sink.is_closed() {
        let Some(client) = clients.get(node % clients.len().max(1)) else {
            return;
        };
        node = node.wrapping_add(1);
        match tokio::time::timeout(TIMEOUT, subscribe(client, &channel)).await {
            Ok(Ok(pubsub)) => {
                if attempt > 0 {
                    log::info!("twisted-oauth2: validation cache: SUBSCRIBE re-established");
                }
                attempt = 0;
                sink.subscribed();
                let mut messages = pubsub.into_on_message();
                loop {
                    match tokio::time::timeout(LIVENESS, messages.next()).await {
                        Ok(Some(m)) => match m.get_payload::<String>() {
                            Ok(p) if p == HEARTBEAT_PAYLOAD => {}
                            Ok(p) => match Revocation::decode(&p) {
                                Some(r) => sink.deliver(r),
                                None => sink.deliver_unreadable(),
                            },
                            Err(_) => sink.deliver_unreadable(),
                        },
                        Ok(None) | Err(_) => break,
                    }
                    if sink.is_closed() {
                        return;
                    }
                }
                sink.lost();
                log::warn!(
                    "twisted-oauth2: validation cache: the pub/sub connection was lost; every \
                     lookup goes to the store until it is back"
                );
            }
            Ok(Err(e)) => {
                if attempt == 0 {
                    log::warn!("twisted-oauth2: validation cache: cannot SUBSCRIBE: {e}");
                }
            }
            Err(_) => {
                if attempt == 0 {
                    log::warn!("twisted-oauth2: validation cache: SUBSCRIBE timed out");
                }
            }
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::{split_prefix, RedisPubSubChannel};
    use crate::error::StorageError;

    #[tokio::test]
    async fn cluster_urls_are_read_as_the_store_reads_them() {
        // A malformed cluster URL is refused as the store refuses it, before any connection.
        match RedisPubSubChannel::connect("redis+cluster://h:1/0").await {
            Err(StorageError::Other(e)) => assert!(e.to_string().contains("storage"), "{e}"),
            other => panic!("expected a storage setting error, got {other:?}"),
        }
        // No node answering is Unavailable (port 1 on loopback refuses at once).
        match RedisPubSubChannel::connect("redis+cluster://127.0.0.1:1,127.0.0.1:1").await {
            Err(StorageError::Unavailable(_)) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn the_prefix_names_the_channel_and_leaves_the_url() {
        assert_eq!(
            split_prefix("redis://h:6379/2?key_prefix=app%3A1:&protocol=resp2"),
            ("redis://h:6379/2?protocol=resp2".into(), "app:1:".into())
        );
        assert_eq!(
            split_prefix("redis://h"),
            ("redis://h".into(), "oauth2:".into())
        );
        assert_eq!(
            split_prefix("redis://h?key_prefix=x:"),
            ("redis://h".into(), "x:".into())
        );
    }
}
