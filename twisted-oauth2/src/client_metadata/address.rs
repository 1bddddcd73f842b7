//! Which addresses a client metadata document may be fetched from: global unicast only.
//!
//! Every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and
//! its updates) is refused, IPv4 multicast too, and in IPv6 everything outside the global
//! unicast space `2000::/3`. Two IPv6 forms are not addresses of their own but spell an
//! IPv4 one, and are judged as that IPv4 address: IPv4-mapped `::ffff:a.b.c.d` (what a
//! dual-stack socket connects to) and the NAT64 well-known prefix `64:ff9b::a.b.c.d`
//! (what DNS64 answers for an IPv4-only host, RFC 6052 §3.1, which also says the prefix
//! must not carry a non-global IPv4 address). The other forms that embed an IPv4 address
//! (IPv4-compatible `::/96`, SIIT `::ffff:0:0:0/96`, local-use NAT64 `64:ff9b:1::/48`,
//! 6to4 `2002::/16`, Teredo `2001::/32`) are refused whatever they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, 0, 0), len)
}

/// The IANA IPv4 Special-Purpose Address Registry, and multicast.
pub(crate) const SPECIAL_IPV4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "\"this network\" (RFC 791)"),
    (v4(10, 0, 0, 0, 8), "private use (RFC 1918)"),
    (v4(100, 64, 0, 0, 10), "shared address space (RFC 6598)"),
    (v4(127, 0, 0, 0, 8), "loopback (RFC 1122)"),
    (v4(169, 254, 0, 0, 16), "link local (RFC 3927)"),
    (v4(172, 16, 0, 0, 12), "private use (RFC 1918)"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments (RFC 6890)"),
    (v4(192, 0, 2, 0, 24), "documentation TEST-NET-1 (RFC 5737)"),
    (v4(192, 31, 196, 0, 24), "AS112-v4 (RFC 7535)"),
    (v4(192, 52, 193, 0, 24), "AMT (RFC 7450)"),
    (
        v4(192, 88, 99, 0, 24),
        "deprecated 6to4 relay anycast (RFC 7526)",
    ),
    (v4(192, 168, 0, 0, 16), "private use (RFC 1918)"),
    (
        v4(192, 175, 48, 0, 24),
        "direct delegation AS112 service (RFC 7534)",
    ),
    (v4(198, 18, 0, 0, 15), "benchmarking (RFC 2544)"),
    (
        v4(198, 51, 100, 0, 24),
        "documentation TEST-NET-2 (RFC 5737)",
    ),
    (
        v4(203, 0, 113, 0, 24),
        "documentation TEST-NET-3 (RFC 5737)",
    ),
    (v4(224, 0, 0, 0, 4), "multicast (RFC 5771)"),
    (v4(240, 0, 0, 0, 4), "reserved (RFC 1112)"),
    (v4(255, 255, 255, 255, 32), "limited broadcast (RFC 919)"),
];

/// IPv4-mapped addresses, judged as the IPv4 address they carry.
const IPV4_MAPPED: Ipv6Net = v6(0, 0, 0, 0, 0, 0xffff, 96);
/// The NAT64 well-known prefix, judged as the IPv4 address it carries.
const NAT64_WELL_KNOWN: Ipv6Net = v6(0x64, 0xff9b, 0, 0, 0, 0, 96);
/// The IPv6 global unicast space (RFC 4291 §2.4); everything outside it is refused.
const GLOBAL_UNICAST: Ipv6Net = v6(0x2000, 0, 0, 0, 0, 0, 3);

/// The IANA IPv6 Special-Purpose Address Registry. The blocks outside `2000::/3` are
/// listed for the log message and the tests; anything else outside it is refused too.
pub(crate) const SPECIAL_IPV6: &[(Ipv6Net, &str)] = &[
    (v6(0, 0, 0, 0, 0, 0, 128), "unspecified (RFC 4291)"),
    (
        Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128),
        "loopback (RFC 4291)",
    ),
    (
        v6(0, 0, 0, 0, 0, 0, 96),
        "IPv4-compatible, deprecated (RFC 4291)",
    ),
    (v6(0, 0, 0, 0, 0xffff, 0, 96), "IPv4-translated (RFC 2765)"),
    (
        v6(0x64, 0xff9b, 1, 0, 0, 0, 48),
        "local-use IPv4/IPv6 translation (RFC 8215)",
    ),
    (v6(0x100, 0, 0, 0, 0, 0, 64), "discard-only (RFC 6666)"),
    (
        v6(0x2001, 0, 0, 0, 0, 0, 23),
        "IETF protocol assignments (RFC 2928)",
    ),
    (v6(0x2001, 0, 0, 0, 0, 0, 32), "Teredo (RFC 4380)"),
    (v6(0x2001, 0x2, 0, 0, 0, 0, 48), "benchmarking (RFC 5180)"),
    (v6(0x2001, 0x3, 0, 0, 0, 0, 32), "AMT (RFC 7450)"),
    (v6(0x2001, 0x4, 0x112, 0, 0, 0, 48), "AS112-v6 (RFC 7535)"),
    (v6(0x2001, 0x20, 0, 0, 0, 0, 28), "ORCHIDv2 (RFC 7343)"),
    (v6(0x2001, 0x30, 0, 0, 0, 0, 28), "DRIP DET (RFC 9374)"),
    (
        v6(0x2001, 0xdb8, 0, 0, 0, 0, 32),
        "documentation (RFC 3849)",
    ),
    (v6(0x2002, 0, 0, 0, 0, 0, 16), "6to4 (RFC 3056)"),
    (
        v6(0x2620, 0x4f, 0x8000, 0, 0, 0, 48),
        "direct delegation AS112 service (RFC 7534)",
    ),
    (v6(0x3fff, 0, 0, 0, 0, 0, 20), "documentation (RFC 9637)"),
    (
        v6(0x5f00, 0, 0, 0, 0, 0, 16),
        "segment routing SIDs (RFC 9602)",
    ),
    (v6(0xfc00, 0, 0, 0, 0, 0, 7), "unique local (RFC 4193)"),
    (v6(0xfe80, 0, 0, 0, 0, 0, 10), "link local (RFC 4291)"),
    (
        v6(0xfec0, 0, 0, 0, 0, 0, 10),
        "site local, deprecated (RFC 3879)",
    ),
    (v6(0xff00, 0, 0, 0, 0, 0, 8), "multicast (RFC 4291)"),
];

/// Why `ip` may not be fetched from (the special-use block it is in), or `None` for a
/// global unicast address.
pub(crate) fn special_use(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => special_use_v4(a),
        IpAddr::V6(a) => {
            if IPV4_MAPPED.contains(&a) || NAT64_WELL_KNOWN.contains(&a) {
                let [.., w, x, y, z] = a.octets();
                return special_use_v4(Ipv4Addr::new(w, x, y, z));
            }
            // The most specific listed block names the reason.
            SPECIAL_IPV6
                .iter()
                .filter(|(net, _)| net.contains(&a))
                .max_by_key(|(net, _)| net.prefix_len())
                .map(|(_, why)| *why)
                .or_else(|| {
                    (!GLOBAL_UNICAST.contains(&a)).then_some("outside global unicast 2000::/3")
                })
        }
    }
}

fn special_use_v4(a: Ipv4Addr) -> Option<&'static str> {
    SPECIAL_IPV4
        .iter()
        .find(|(net, _)| net.contains(&a))
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        special_use(s.parse().unwrap()).is_some()
    }

    /// Every IPv4 block: its first and last address are refused, the addresses just
    /// outside it are not (where they are not in another block).
    #[test]
    fn every_ipv4_special_purpose_block_is_refused_and_its_neighbours_are_not() {
        let table: &[(&str, &str, &[&str])] = &[
            ("0.0.0.0", "0.255.255.255", &["1.0.0.0"]),
            ("10.0.0.0", "10.255.255.255", &["9.255.255.255", "11.0.0.0"]),
            (
                "100.64.0.0",
                "100.127.255.255",
                &["100.63.255.255", "100.128.0.0"],
            ),
            (
                "127.0.0.0",
                "127.255.255.255",
                &["126.255.255.255", "128.0.0.0"],
            ),
            (
                "169.254.0.0",
                "169.254.255.255",
                &["169.253.255.255", "169.255.0.0"],
            ),
            (
                "172.16.0.0",
                "172.31.255.255",
                &["172.15.255.255", "172.32.0.0"],
            ),
            (
                "192.0.0.0",
                "192.0.0.255",
                &["191.255.255.255", "192.0.1.0"],
            ),
            ("192.0.2.0", "192.0.2.255", &["192.0.1.255", "192.0.3.0"]),
            (
                "192.31.196.0",
                "192.31.196.255",
                &["192.31.195.255", "192.31.197.0"],
            ),
            (
                "192.52.193.0",
                "192.52.193.255",
                &["192.52.192.255", "192.52.194.0"],
            ),
            (
                "192.88.99.0",
                "192.88.99.255",
                &["192.88.98.255", "192.88.100.0"],
            ),
            (
                "192.168.0.0",
                "192.168.255.255",
                &["192.167.255.255", "192.169.0.0"],
            ),
            (
                "192.175.48.0",
                "192.175.48.255",
                &["192.175.47.255", "192.175.49.0"],
            ),
            (
                "198.18.0.0",
                "198.19.255.255",
                &["198.17.255.255", "198.20.0.0"],
            ),
            (
                "198.51.100.0",
                "198.51.100.255",
                &["198.51.99.255", "198.51.101.0"],
            ),
            (
                "203.0.113.0",
                "203.0.113.255",
                &["203.0.112.255", "203.0.114.0"],
            ),
            ("224.0.0.0", "239.255.255.255", &["223.255.255.255"]),
            ("240.0.0.0", "255.255.255.254", &[]),
            ("255.255.255.255", "255.255.255.255", &[]),
        ];
        assert_eq!(table.len(), SPECIAL_IPV4.len(), "a row per block");
        for (first, last, outside) in table {
            assert!(refused(first), "{first}");
            assert!(refused(last), "{last}");
            for o in *outside {
                assert!(!refused(o), "{o} is outside the block of {first}");
            }
        }
        for public in ["8.8.8.8", "93.184.215.14", "1.1.1.1", "223.255.255.255"] {
            assert!(!refused(public), "{public}");
        }
    }

    /// Every IPv6 block, with an address inside and the boundary outside where that is
    /// global unicast.
    #[test]
    fn every_ipv6_special_purpose_block_is_refused_and_its_neighbours_are_not() {
        let table: &[(&str, &[&str], &[&str])] = &[
            ("::/128", &["::"], &[]),
            ("::1/128", &["::1"], &[]),
            ("::/96", &["::2", "::a00:1", "::ffff:ffff"], &[]),
            (
                "::ffff:0:0:0/96",
                &["::ffff:0:0:0", "::ffff:0:808:808"],
                &[],
            ),
            (
                "64:ff9b:1::/48",
                &["64:ff9b:1::808:808", "64:ff9b:1:ffff::1"],
                &[],
            ),
            ("100::/64", &["100::", "100::ffff:ffff:ffff:ffff"], &[]),
            (
                "2001::/23",
                &["2001::", "2001:1::1", "2001:1ff:ffff::1"],
                &["2001:200::", "2000:ffff:ffff:ffff::1"],
            ),
            ("2001::/32", &["2001:0:4136:e378:8000:63bf:3fff:fdd2"], &[]),
            ("2001:2::/48", &["2001:2::1"], &[]),
            ("2001:3::/32", &["2001:3::1"], &[]),
            ("2001:4:112::/48", &["2001:4:112::1"], &[]),
            ("2001:20::/28", &["2001:20::1", "2001:2f::1"], &[]),
            ("2001:30::/28", &["2001:30::1", "2001:3f::1"], &[]),
            (
                "2001:db8::/32",
                &["2001:db8::", "2001:db8:ffff:ffff::1"],
                &["2001:db7:ffff:ffff::1", "2001:db9::"],
            ),
            (
                "2002::/16",
                &["2002::", "2002:ffff:ffff::1"],
                &["2001:ffff:ffff::1", "2003::"],
            ),
            (
                "2620:4f:8000::/48",
                &["2620:4f:8000::1"],
                &["2620:4f:7fff:ffff::1", "2620:4f:8001::"],
            ),
            (
                "3fff::/20",
                &["3fff::", "3fff:fff:ffff::1"],
                &["3ffe:ffff::1", "3fff:1000::"],
            ),
            ("5f00::/16", &["5f00::", "5f00:ffff::1"], &[]),
            ("fc00::/7", &["fc00::", "fd12:3456::1", "fdff:ffff::1"], &[]),
            ("fe80::/10", &["fe80::1", "febf:ffff::1"], &[]),
            ("fec0::/10", &["fec0::1", "feff:ffff::1"], &[]),
            ("ff00::/8", &["ff02::1", "ff0e::1", "ffff::1"], &[]),
        ];
        assert_eq!(table.len(), SPECIAL_IPV6.len(), "a row per block");
        for (net, inside, outside) in table {
            let net: Ipv6Net = net.parse().unwrap();
            assert!(
                SPECIAL_IPV6.iter().any(|(n, _)| *n == net),
                "{net} is listed"
            );
            for i in *inside {
                assert!(
                    net.contains(&i.parse::<Ipv6Addr>().unwrap()),
                    "{i} in {net}"
                );
                assert!(refused(i), "{i}");
            }
            for o in *outside {
                assert!(!refused(o), "{o} is outside {net}");
            }
        }
        // Outside 2000::/3 nothing is global unicast.
        for other in ["1::1", "4000::1", "8000::1", "e000::1", "1fff:ffff::1"] {
            assert!(refused(other), "{other}");
        }
        for public in [
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "2001:200::1",
            "3ffe::1",
        ] {
            assert!(!refused(public), "{public}");
        }
    }

    /// The IPv6 forms that embed an IPv4 address never reach a special-use IPv4 one.
    #[test]
    fn ipv6_forms_embedding_a_special_use_ipv4_address_are_refused() {
        for embedded in [
            // IPv4-mapped
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:192.168.1.1",
            "::ffff:0.0.0.0",
            // IPv4-compatible
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            // IPv4-translated (SIIT)
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.0.0.1",
            // NAT64, well-known and local-use prefixes
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::192.168.0.1",
            "64:ff9b:1::7f00:1",
            // 6to4: 2002:AABB:CCDD::
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::1",
            // Teredo: server IPv4 in bits 32-63, client IPv4 = last 32 bits XOR 0xffffffff
            "2001:0:7f00:1:0:0:f5ff:fffe", // server 127.0.0.1, client 10.0.0.1
            "2001:0:808:808:0:0:80ff:fffe", // server 8.8.8.8, client 127.0.0.1
            "2001:0:808:808:8000:63bf:5601:5601", // client 169.254.169.254
        ] {
            assert!(refused(embedded), "{embedded}");
        }
        // Mapped and NAT64 well-known forms of a public address are that address.
        for public in ["::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "64:ff9b::5db8:d70e"] {
            assert!(!refused(public), "{public}");
        }
    }
}
