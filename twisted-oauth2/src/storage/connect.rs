//! Opening a backend from a storage URL (the `storage` configuration key).

use std::sync::Arc;

use super::memory::MemoryStore;
use super::Stores;
use crate::error::{ConfigError, StorageError};

/// Opens the stores a storage URL names, with each backend's default options:
///
/// | URL | backend | feature |
/// |---|---|---|
/// | `memory` | [`MemoryStore`] (nothing survives a restart) | always |
/// | `sqlite://path/to/file.db` (created if missing), `sqlite::memory:` | `sql::SqlStore` | `sqlite` |
/// | `postgres://user:password@host:5432/db` | `sql::SqlStore` | `postgres` |
/// | `redis://[:password@]host:6379[/db][?key_prefix=oauth2:]` | `redis::RedisStore` | `redis` |
/// | `redis+cluster://[:password@]host:7001,host:7002,...[?key_prefix=oauth2:]` | `redis::RedisStore` on a Redis Cluster | `redis` |
///
/// With a Redis URL the stores' extension slot of
/// [`CounterStore`](crate::limits::CounterStore) holds the Redis store too, which the
/// server then counts its brute-force limits in (unless given
/// [`ServerBuilder::counter_store`](crate::server::ServerBuilder::counter_store)).
///
/// SQL schemas are created or migrated before this returns. A scheme whose feature is not
/// enabled, or an unknown scheme, is a [`StorageError::Other`] wrapping a
/// [`ConfigError::Setting`] for `storage`; a backend that cannot be reached is
/// [`StorageError::Unavailable`].
pub async fn connect(url: &str) -> Result<Stores, StorageError> {
    let url = url.trim();
    match scheme(url) {
        "memory" => Ok(Stores::from_backend(Arc::new(MemoryStore::new()))),
        "sqlite" => {
            #[cfg(feature = "sqlite")]
            {
                let s = Arc::new(super::sql::SqlStore::connect(url).await?);
                let mut stores = Stores::from_backend(s.clone());
                stores.device_codes = Some(s);
                Ok(stores)
            }
            #[cfg(not(feature = "sqlite"))]
            Err(feature_off("sqlite"))
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "postgres")]
            {
                let s = Arc::new(super::sql::SqlStore::connect(url).await?);
                let mut stores = Stores::from_backend(s.clone());
                stores.device_codes = Some(s);
                Ok(stores)
            }
            #[cfg(not(feature = "postgres"))]
            Err(feature_off("postgres"))
        }
        "redis" | "rediss" | "redis+unix" | "unix" | "redis+cluster" => {
            #[cfg(feature = "redis")]
            {
                let s = Arc::new(super::redis::RedisStore::connect(url).await?);
                // The store also counts brute-force attempts, so instances sharing the
                // database share their limits (`crate::limits`).
                super::StoresBuilder::default()
                    .backend(s.clone())
                    .device_codes(s.clone())
                    .slot::<dyn crate::limits::CounterStore>(s)
                    .build()
                    .map_err(StorageError::other)
            }
            #[cfg(not(feature = "redis"))]
            Err(feature_off("redis"))
        }
        other => Err(StorageError::other(ConfigError::Setting {
            key: "storage",
            reason: format!(
                "unknown storage URL scheme `{}`: expected `memory`, `sqlite://`, \
                 `postgres://` or `redis://`",
                crate::error::printable(other)
            ),
        })),
    }
}

/// The backend kind of a storage URL (`memory`, `sqlite`, `postgres`, `redis`), or the
/// scheme as written when it is unknown.
pub(crate) fn storage_kind(url: &str) -> &str {
    match scheme(url.trim()) {
        "postgresql" => "postgres",
        "rediss" | "redis+unix" | "unix" | "redis+cluster" => "redis",
        s => s,
    }
}

/// A loggable description of a storage URL: the kind and where it points, without user
/// name, password or query (`postgres (127.0.0.1:5432/test)`, `sqlite (oauth2.db)`,
/// `memory (not durable)`).
pub(crate) fn describe_storage(url: &str) -> String {
    let url = url.trim();
    let kind = storage_kind(url);
    match kind {
        "memory" => "memory (not durable)".to_owned(),
        "sqlite" => {
            let rest = url.strip_prefix("sqlite:").unwrap_or(url);
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let path = rest.split('?').next().unwrap_or_default();
            format!("sqlite ({})", crate::error::printable(path))
        }
        // `host:port,host:port` is no URL authority: the nodes after any `user:password@`.
        _ if scheme(url) == "redis+cluster" => {
            let rest = url.split_once("://").map_or("", |(_, r)| r);
            let rest = rest.rsplit_once('@').map_or(rest, |(_, n)| n);
            let nodes = rest.split(['?', '/']).next().unwrap_or_default();
            format!("redis cluster ({})", crate::error::printable(nodes))
        }
        _ => match url::Url::parse(url) {
            Ok(u) => {
                let host = u.host_str().unwrap_or_default();
                let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!(
                    "{kind} ({}{}{})",
                    crate::error::printable(host),
                    port,
                    crate::error::printable(u.path())
                )
            }
            Err(_) => format!("{} (unparsable URL)", crate::error::printable(kind)),
        },
    }
}

fn scheme(url: &str) -> &str {
    if url == "memory" || url == "memory:" || url == "memory://" {
        return "memory";
    }
    url.split(':').next().unwrap_or_default()
}

#[allow(dead_code)]
pub(super) fn feature_off(feature: &str) -> StorageError {
    StorageError::other(ConfigError::Setting {
        key: "storage",
        reason: format!(
            "`{feature}` storage needs twisted-oauth2's `{feature}` cargo feature, which this \
             build does not enable"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_hide_credentials() {
        assert_eq!(
            describe_storage("postgres://app:s3cret@db.local:5432/oauth?sslmode=require"),
            "postgres (db.local:5432/oauth)"
        );
        assert_eq!(
            describe_storage("redis://:pw@127.0.0.1:6379/2?key_prefix=x"),
            "redis (127.0.0.1:6379/2)"
        );
        assert_eq!(
            describe_storage("redis+cluster://:pw@10.0.0.1:7001,10.0.0.2:7002/?key_prefix=x"),
            "redis cluster (10.0.0.1:7001,10.0.0.2:7002)"
        );
        assert_eq!(
            describe_storage("redis+cluster://u:p/w?d@h:7001"),
            "redis cluster (h:7001)"
        );
        assert_eq!(storage_kind("redis+cluster://h:1,h:2"), "redis");
        assert_eq!(describe_storage("sqlite://oauth2.db"), "sqlite (oauth2.db)");
        assert_eq!(describe_storage("memory"), "memory (not durable)");
        assert_eq!(storage_kind("postgresql://x/y"), "postgres");
    }

    /// Polls a future that must be ready at once (no backend I/O involved).
    fn ready<F: std::future::Future>(f: F) -> Option<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn memory_and_unknown_schemes() {
        assert!(matches!(ready(connect("memory")), Some(Ok(_))));
        match ready(connect("mysql://x")) {
            Some(Err(StorageError::Other(e))) => {
                assert!(e.to_string().contains("unknown storage URL scheme"))
            }
            _ => panic!("unknown scheme must be refused"),
        }
    }
}
