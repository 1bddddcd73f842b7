//! The [`CounterStore`] of [`RedisStore`]: one fixed-window counter per rule and key,
//! `<prefix>lim:<rule>:<key digest>` (the key's SHA-256 in hex, so any key is one bounded
//! Redis key, in one Redis Cluster slot). The first counted attempt of a window sets the
//! counter's TTL to the window; the counter is refused from its `max`-th attempt on until
//! that TTL runs out. Counting and reading are each one Lua script, so every server
//! instance sharing the Redis database counts into the same windows, atomically.

use async_trait::async_trait;

use super::RedisStore;
use crate::error::StorageError;
use crate::limits::{CounterStore, Rule};
use crate::token::TokenDigest;

/// Counts one attempt. KEYS: counter. ARGV: max, window in milliseconds. Returns the
/// milliseconds the key is refused for, or -1 within the limit.
const HIT: &str = r#"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  ttl = tonumber(ARGV[2])
end
if n >= tonumber(ARGV[1]) then return ttl end
return -1
"#;

/// Reads a counter without counting. KEYS: counter. ARGV: max. Returns the milliseconds
/// the key is refused for, or -1.
const REFUSED: &str = r#"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) then return -1 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return -1 end
return ttl
"#;

fn script(
    cell: &'static std::sync::OnceLock<::redis::Script>,
    src: &str,
) -> &'static ::redis::Script {
    cell.get_or_init(|| ::redis::Script::new(src))
}

/// Milliseconds to whole seconds, rounded up, at least 1; `None` for a negative answer.
fn seconds(ms: i64) -> Option<u64> {
    u64::try_from(ms).ok().map(|ms| ms.div_ceil(1000).max(1))
}

impl RedisStore {
    fn counter_key(&self, rule: &Rule, key: &str) -> String {
        format!(
            "{}lim:{}:{}",
            self.keys.prefix,
            rule.name,
            TokenDigest::of(key).to_hex()
        )
    }
}

#[async_trait]
impl CounterStore for RedisStore {
    async fn hit(&self, rule: &Rule, key: &str) -> Result<Option<u64>, StorageError> {
        if rule.max == 0 {
            return Ok(None);
        }
        static CELL: std::sync::OnceLock<::redis::Script> = std::sync::OnceLock::new();
        let s = script(&CELL, HIT);
        let k = self.counter_key(rule, key);
        let window_ms = rule.window_seconds.max(1).saturating_mul(1000);
        let max = rule.max;
        let ms: i64 = self
            .run(
                |mut c| async move { s.key(&k).arg(max).arg(window_ms).invoke_async(&mut c).await },
            )
            .await?;
        Ok(seconds(ms))
    }

    async fn refused(&self, rule: &Rule, key: &str) -> Result<Option<u64>, StorageError> {
        if rule.max == 0 {
            return Ok(None);
        }
        static CELL: std::sync::OnceLock<::redis::Script> = std::sync::OnceLock::new();
        let s = script(&CELL, REFUSED);
        let k = self.counter_key(rule, key);
        let max = rule.max;
        let ms: i64 = self
            .run(|mut c| async move { s.key(&k).arg(max).invoke_async(&mut c).await })
            .await?;
        Ok(seconds(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_milliseconds_round_up_to_whole_seconds() {
        assert_eq!(seconds(-1), None);
        assert_eq!(seconds(0), Some(1));
        assert_eq!(seconds(1), Some(1));
        assert_eq!(seconds(1000), Some(1));
        assert_eq!(seconds(1001), Some(2));
    }
}
