//! What bounds the fetches strangers can cause: fetch slots in total and per host, and
//! `governor` rate limits per caller and per host, each bounded in the keys it tracks.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ClientMetadataConfig;

/// Why a fetch may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_concurrent_fetches` are in flight.
    Slots,
    /// `max_concurrent_fetches_per_host` are in flight for this host.
    HostSlots,
    /// The caller is over `caller_fetches_per_minute`: retry after this many seconds.
    Caller(u64),
    /// The host is over `host_fetches_per_minute`.
    Host,
}

/// The fetch slots and rate limits of one resolver.
pub(crate) struct FetchLimiter {
    max_total: usize,
    max_per_host: usize,
    /// Fetches in flight: in total, and per host (a host is present only while it has one,
    /// so the map holds at most `max_total` entries).
    in_flight: Mutex<(usize, HashMap<String, usize>)>,
    per_caller: Option<Keyed<IpAddr>>,
    per_host: Option<Keyed<String>>,
}

/// A fetch slot (in total and for its host), given back when dropped.
pub(crate) struct Slot<'a> {
    limiter: &'a FetchLimiter,
    host: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let Ok(mut g) = self.limiter.in_flight.lock() else {
            return;
        };
        let (total, hosts) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(n) = hosts.get_mut(&self.host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                hosts.remove(&self.host);
            }
        }
    }
}

impl FetchLimiter {
    pub(crate) fn new(cfg: &ClientMetadataConfig) -> Self {
        FetchLimiter {
            max_total: cfg.max_concurrent_fetches,
            max_per_host: cfg.fetches_per_host(),
            in_flight: Mutex::new((0, HashMap::new())),
            per_caller: Keyed::new(
                cfg.caller_fetches_per_minute,
                cfg.rate_limit_max_keys,
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            ),
            per_host: Keyed::new(
                cfg.host_fetches_per_minute,
                cfg.rate_limit_max_keys,
                String::new(),
            ),
        }
    }

    /// A slot for one fetch from `host` on behalf of `caller` (`None`: not known, so only
    /// the per-host limits apply), or why not. The slots are taken first, so a refused
    /// fetch is not charged to the rate limits; the caller's limit is checked before the
    /// host's, so a caller over its own limit does not use up the host's.
    pub(crate) fn admit(&self, host: &str, caller: Option<IpAddr>) -> Result<Slot<'_>, Refusal> {
        let slot = self.slot(host)?;
        if let (Some(l), Some(ip)) = (&self.per_caller, caller) {
            l.check(crate::rate_limit::limit_key(Some(ip)))
                .map_err(Refusal::Caller)?;
        }
        if let Some(l) = &self.per_host {
            l.check(host.to_owned()).map_err(|_| Refusal::Host)?;
        }
        Ok(slot)
    }

    fn slot(&self, host: &str) -> Result<Slot<'_>, Refusal> {
        let mut g = self.in_flight.lock().map_err(|_| Refusal::Slots)?;
        let (total, hosts) = &mut *g;
        if *total >= self.max_total {
            return Err(Refusal::Slots);
        }
        let n = hosts.entry(host.to_owned()).or_insert(0);
        if *n >= self.max_per_host {
            return Err(Refusal::HostSlots);
        }
        *n += 1;
        *total += 1;
        Ok(Slot {
            limiter: self,
            host: host.to_owned(),
        })
    }
}

/// A keyed rate limiter that tracks at most `max_keys` keys: while it is full after idle
/// keys are forgotten, every key shares the `overflow` bucket.
struct Keyed<K: Hash + Eq + Clone> {
    limiter: governor::DefaultKeyedRateLimiter<K>,
    max_keys: usize,
    overflow: K,
    /// When idle keys were last forgotten: at most once a second, as it scans the table.
    last_sweep: Mutex<Instant>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(per_minute: u32, max_keys: usize, overflow: K) -> Option<Self> {
        let n = NonZeroU32::new(per_minute)?;
        Some(Keyed {
            limiter: governor::RateLimiter::keyed(governor::Quota::per_minute(n)),
            max_keys,
            overflow,
            last_sweep: Mutex::new(Instant::now()),
        })
    }

    /// `Err(seconds)` to wait when `key` is over its limit.
    fn check(&self, key: K) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        let mut key = key;
        if self.limiter.len() >= self.max_keys {
            if let Ok(mut last) = self.last_sweep.try_lock() {
                if last.elapsed() >= Duration::from_secs(1) {
                    self.limiter.retain_recent();
                    *last = Instant::now();
                }
            }
            if self.limiter.len() >= self.max_keys {
                key = self.overflow.clone();
            }
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ClientMetadataConfig {
        ClientMetadataConfig {
            max_concurrent_fetches: 8,
            ..Default::default()
        }
    }

    #[test]
    fn one_host_holds_at_most_its_share_of_the_slots_and_gives_them_back() {
        let l = FetchLimiter::new(&cfg());
        let held: Vec<_> = (0..2)
            .map(|_| l.admit("slow.example", None).unwrap())
            .collect();
        assert_eq!(
            l.admit("slow.example", None).err(),
            Some(Refusal::HostSlots),
            "a quarter of 8"
        );
        let other = l
            .admit("other.example", None)
            .expect("another host still fetches");
        drop(held);
        drop(other);
        assert!(l.admit("slow.example", None).is_ok());
        assert_eq!(l.in_flight.lock().unwrap().0, 0);
        assert!(
            l.in_flight.lock().unwrap().1.is_empty(),
            "idle hosts are forgotten"
        );
    }

    #[test]
    fn the_total_bounds_every_host_together() {
        let l = FetchLimiter::new(&ClientMetadataConfig {
            max_concurrent_fetches: 2,
            max_concurrent_fetches_per_host: Some(2),
            ..Default::default()
        });
        let _a = l.admit("a.example", None).unwrap();
        let _b = l.admit("b.example", None).unwrap();
        assert_eq!(l.admit("c.example", None).err(), Some(Refusal::Slots));
    }

    #[test]
    fn a_caller_over_its_limit_waits_and_others_do_not() {
        let l = FetchLimiter::new(&ClientMetadataConfig {
            caller_fetches_per_minute: 2,
            ..cfg()
        });
        let a = Some("203.0.113.7".parse().unwrap());
        for i in 0..2 {
            assert!(l.admit(&format!("h{i}.example"), a).is_ok());
        }
        match l.admit("h9.example", a).err() {
            Some(Refusal::Caller(wait)) => assert!((1..=60).contains(&wait), "{wait}"),
            other => panic!("{other:?}"),
        }
        // The same /64 is the same caller; another address is not.
        let same64 = Some("2001:db8:1:2::1".parse().unwrap());
        let same64b = Some("2001:db8:1:2::ffff".parse().unwrap());
        assert!(l.admit("h.example", same64).is_ok());
        assert!(l.admit("h.example", same64b).is_ok());
        assert!(matches!(
            l.admit("h.example", same64).err(),
            Some(Refusal::Caller(_))
        ));
        assert!(l
            .admit("h.example", Some("198.51.100.1".parse().unwrap()))
            .is_ok());
        assert!(
            l.admit("h.example", None).is_ok(),
            "no caller: no caller limit"
        );
    }

    #[test]
    fn a_host_over_its_limit_is_refused_for_every_caller() {
        let l = FetchLimiter::new(&ClientMetadataConfig {
            host_fetches_per_minute: 3,
            ..cfg()
        });
        for i in 0..3 {
            let ip = Some(IpAddr::from([198, 51, 100, i]));
            assert!(l.admit("busy.example", ip).is_ok());
        }
        assert_eq!(
            l.admit("busy.example", Some(IpAddr::from([198, 51, 100, 99])))
                .err(),
            Some(Refusal::Host)
        );
        assert!(l.admit("quiet.example", None).is_ok());
    }

    #[test]
    fn a_full_key_table_shares_one_bucket_instead_of_growing() {
        let k = Keyed::new(1, 4, 0u32).unwrap();
        for key in 1..=4 {
            assert!(k.check(key).is_ok());
        }
        // Full: new keys land in the overflow bucket, which allows one and then refuses.
        assert!(k.check(5).is_ok());
        assert!(k.check(6).is_err());
        assert!(k.check(7).is_err());
        assert!(k.limiter.len() <= 5);
    }
}
