//! The per-IP rate limit of the registration endpoint (a bounded `governor` keyed limiter).

use std::net::IpAddr;
use std::num::NonZeroU32;

use crate::config::RegistrationConfig;

/// The per-IP limiter of registration requests, bounded in the addresses it tracks.
pub(crate) struct RateLimiter {
    limiter: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
    max_keys: usize,
}

impl RateLimiter {
    pub(crate) fn new(cfg: &RegistrationConfig) -> Self {
        let limiter = NonZeroU32::new(cfg.rate_limit_per_minute)
            .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n)));
        RateLimiter {
            limiter,
            max_keys: cfg.rate_limit_max_ips,
        }
    }

    /// `Err(seconds)` to wait when `ip` is over its limit (or the table is full).
    pub(crate) fn check(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        if l.len() >= self.max_keys {
            l.retain_recent();
            if l.len() >= self.max_keys {
                return Err(60);
            }
        }
        let key = limit_key(ip);
        l.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The rate-limit bucket of an address: an IPv4 address, or the /64 prefix of an IPv6 one
/// (one host usually holds a whole /64, so per-address buckets would be free to multiply).
pub(crate) fn limit_key(ip: Option<IpAddr>) -> IpAddr {
    match ip {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Some(v4) => v4,
        None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    }
}
