//! Per-address limits of the registration endpoint (bounded `governor` keyed limiters).
//!
//! An address is the one [`crate::server::AuthorizationServer::client_address`] gives (the
//! peer, or what a trusted proxy says). Each limit keeps a bounded table of buckets, keyed by
//! the IPv4 address or the IPv6 /64. When that table is full of recent addresses, new ones
//! are not refused outright: they share a bucket per wider prefix (IPv4 /24, IPv6 /48), and
//! when that table is full too, one overflow bucket. So a flood from many addresses slows
//! the flood's own prefixes first, and an address from elsewhere still gets through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RegistrationConfig;

/// One limit: fine buckets per address, coarse ones per prefix, one overflow bucket.
struct Tiered {
    fine: DefaultKeyedRateLimiter<IpAddr>,
    coarse: DefaultKeyedRateLimiter<IpAddr>,
    overflow: governor::DefaultDirectRateLimiter,
    max_keys: usize,
}

/// Whether `l` may take one more key (pruning old ones once when full).
fn has_room(l: &DefaultKeyedRateLimiter<IpAddr>, max: usize) -> bool {
    if l.len() < max {
        return true;
    }
    l.retain_recent();
    l.len() < max
}

fn seconds(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> u64 {
    use governor::clock::{Clock, DefaultClock};
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl Tiered {
    /// `quota` per address; a shared prefix bucket gets `4 ×` its burst and rate, the overflow
    /// bucket `16 ×`.
    fn new(quota: Quota, max_keys: usize) -> Self {
        let scaled = |k: u32| {
            let burst = quota
                .burst_size()
                .saturating_mul(NonZeroU32::new(k).unwrap_or(NonZeroU32::MIN));
            let period = quota.replenish_interval() / k;
            Quota::with_period(period.max(Duration::from_nanos(1)))
                .unwrap_or(quota)
                .allow_burst(burst)
        };
        Tiered {
            fine: governor::RateLimiter::keyed(quota),
            coarse: governor::RateLimiter::keyed(scaled(4)),
            overflow: governor::RateLimiter::direct(scaled(16)),
            max_keys,
        }
    }

    fn check(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        let (fine, coarse) = keys(ip);
        // A full table (of buckets that have not refilled) takes no new key; an address then
        // counts in its prefix's bucket, so it is never freer than its own bucket allowed.
        if has_room(&self.fine, self.max_keys) {
            return self.fine.check_key(&fine).map_err(seconds);
        }
        if has_room(&self.coarse, self.max_keys) {
            return self.coarse.check_key(&coarse).map_err(seconds);
        }
        self.overflow.check().map_err(seconds)
    }
}

/// The per-address limits of `POST /register`: requests per minute, and registrations per
/// unused-client lifetime.
pub(crate) struct RateLimiter {
    per_minute: Option<Tiered>,
    per_lifetime: Option<Tiered>,
}

impl RateLimiter {
    pub(crate) fn new(cfg: &RegistrationConfig) -> Self {
        let per_minute = NonZeroU32::new(cfg.rate_limit_per_minute)
            .map(|n| Tiered::new(Quota::per_minute(n), cfg.rate_limit_max_ips));
        let per_lifetime = NonZeroU32::new(cfg.max_registrations_per_address).map(|n| {
            let window = match cfg.unused_client_lifetime {
                0 => 86_400,
                s => s,
            };
            let period = Duration::from_secs(window) / n.get();
            let quota = Quota::with_period(period.max(Duration::from_millis(1)))
                .unwrap_or(Quota::per_hour(n))
                .allow_burst(n);
            Tiered::new(quota, cfg.rate_limit_max_ips)
        });
        RateLimiter {
            per_minute,
            per_lifetime,
        }
    }

    /// `Err(seconds)` to wait when `ip` (or the prefix or overflow bucket it falls in) is
    /// over a limit.
    pub(crate) fn check(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        if let Some(l) = &self.per_minute {
            l.check(ip)?;
        }
        if let Some(l) = &self.per_lifetime {
            l.check(ip)?;
        }
        Ok(())
    }
}

/// The fine and coarse buckets of an address: the IPv4 address and its /24, or the IPv6 /64
/// and /48 (one host usually holds a whole /64, so per-address buckets would be free to
/// multiply). An IPv4-mapped IPv6 address counts as its IPv4 address; no address (a test
/// client without a peer) is one shared bucket.
/// The per-address bucket of an address (the fine key of [`keys`]): an IPv4 address, or the
/// /64 of an IPv6 one.
pub(crate) fn limit_key(ip: Option<IpAddr>) -> IpAddr {
    keys(ip).0
}

fn keys(ip: Option<IpAddr>) -> (IpAddr, IpAddr) {
    let v4 = |a: Ipv4Addr| {
        let o = a.octets();
        (
            IpAddr::V4(a),
            IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 0)),
        )
    };
    match ip {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(a) => v4(a),
            None => {
                let s = v6.segments();
                (
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)),
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0)),
                )
            }
        },
        Some(IpAddr::V4(a)) => v4(a),
        None => v4(Ipv4Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(per_minute: u32, max_ips: usize) -> RegistrationConfig {
        RegistrationConfig {
            rate_limit_per_minute: per_minute,
            rate_limit_max_ips: max_ips,
            max_registrations_per_address: 0,
            ..Default::default()
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_address_over_its_limit_waits_others_do_not() {
        let l = RateLimiter::new(&cfg(2, 100));
        assert!(l.check(ip("192.0.2.1")).is_ok());
        assert!(l.check(ip("192.0.2.1")).is_ok());
        let wait = l.check(ip("192.0.2.1")).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(l.check(ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_bucket() {
        let l = RateLimiter::new(&cfg(1, 100));
        assert!(l.check(ip("2001:db8:1:2::1")).is_ok());
        assert!(l.check(ip("2001:db8:1:2::ffff")).is_err());
        assert!(l.check(ip("2001:db8:1:3::1")).is_ok());
        // Mapped IPv4 is the IPv4 address.
        assert!(l.check(ip("198.51.100.7")).is_ok());
        assert!(l.check(ip("::ffff:198.51.100.7")).is_err());
    }

    #[test]
    fn a_full_table_aggregates_new_addresses_by_prefix_instead_of_refusing_all() {
        let l = RateLimiter::new(&cfg(1, 4));
        // A flood from one /24 fills the per-address table.
        for i in 1..=4 {
            assert!(l.check(ip(&format!("203.0.113.{i}"))).is_ok());
        }
        // More of the flood's /24 now share one bucket (4 per minute), then wait.
        let mut passed = 0;
        for i in 5..=40 {
            if l.check(ip(&format!("203.0.113.{i}"))).is_ok() {
                passed += 1;
            }
        }
        assert_eq!(passed, 4, "the flood's prefix shares one bucket");
        // An address from another prefix still registers.
        assert!(l.check(ip("198.51.100.9")).is_ok());
    }

    #[test]
    fn a_full_prefix_table_falls_back_to_one_overflow_bucket() {
        let l = RateLimiter::new(&cfg(1, 2));
        let mut passed = 0;
        for i in 0..200u32 {
            let a = Ipv4Addr::from(0x0a00_0000 + (i << 8));
            if l.check(Some(IpAddr::V4(a))).is_ok() {
                passed += 1;
            }
        }
        // Each address is its own /24: 2 own buckets, 2 prefix buckets (one request each),
        // then the overflow bucket's burst of 16.
        assert_eq!(passed, 2 + 2 + 16);
    }

    #[test]
    fn registrations_per_address_are_capped_over_the_unused_lifetime() {
        let c = RegistrationConfig {
            rate_limit_per_minute: 0,
            max_registrations_per_address: 3,
            ..Default::default()
        };
        let l = RateLimiter::new(&c);
        for _ in 0..3 {
            assert!(l.check(ip("192.0.2.5")).is_ok());
        }
        let wait = l.check(ip("192.0.2.5")).unwrap_err();
        assert!(wait > 60, "the cap replenishes over the lifetime: {wait}");
        assert!(l.check(ip("192.0.2.6")).is_ok());
    }
}
