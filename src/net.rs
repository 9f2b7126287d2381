//! Who is the client: trusted reverse proxies (`KEYMINT_TRUSTED_PROXIES`), the
//! `X-Forwarded-For` walk, and the key that limits are counted under (an IPv4 address, or an
//! IPv6 /64, since one subscriber commonly holds a whole /64).

use std::net::{IpAddr, Ipv6Addr};

/// An address block such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0-{max}"))?,
            None => max,
        };
        Ok(Cidr {
            net: normalize(net),
            len,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, normalize(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a dual-stack socket reports) is the IPv4 address.
fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The client address of a request that arrived from `peer`: `peer` itself, unless `peer` is
/// a trusted proxy; then the right-most `X-Forwarded-For` entry that is not itself a trusted
/// proxy (entries to its left are client-supplied and could be forged). A malformed entry
/// stops the walk: the last proxy that spoke is the best we know.
pub fn client_addr<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[Cidr],
) -> IpAddr {
    let peer = normalize(peer);
    if !trusted.iter().any(|c| c.contains(peer)) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|h| h.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else { break };
        client = normalize(ip);
        if !trusted.iter().any(|c| c.contains(client)) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` element: an address, possibly bracketed or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let h = hop.trim();
    if let Ok(ip) = h.parse() {
        return Some(ip);
    }
    if let Some(inner) = h.strip_prefix('[') {
        return inner.split(']').next()?.parse().ok();
    }
    h.rsplit_once(':')?.0.parse().ok()
}

/// The key limits count under: IPv4 as is, IPv6 as its /64.
pub fn limit_key(ip: IpAddr) -> String {
    match normalize(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

/// `KEYMINT_TRUSTED_PROXIES`: comma-separated addresses or CIDR blocks.
pub fn parse_cidrs(v: &str) -> Result<Vec<Cidr>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Cidr::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_membership() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.200.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")), "mapped IPv4 counts");
        let c = Cidr::parse("2001:db8::/33").unwrap();
        assert!(c.contains(ip("2001:db8:7fff::1")));
        assert!(!c.contains(ip("2001:db8:8000::1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("proxy.local").is_err());
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let trusted = parse_cidrs("10.0.0.0/8, 192.0.2.1").unwrap();
        let xff = |v: &'static str| std::iter::once(v);
        // Untrusted peer: the header is ignored.
        assert_eq!(
            client_addr(ip("203.0.113.9"), xff("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Trusted peer: right-most untrusted entry; a forged left part is ignored.
        assert_eq!(
            client_addr(
                ip("10.0.0.5"),
                xff("6.6.6.6, 198.51.100.7, 192.0.2.1"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // Several headers are one list, in order.
        assert_eq!(
            client_addr(
                ip("10.0.0.5"),
                ["1.1.1.1", "198.51.100.8:4711"].into_iter(),
                &trusted
            ),
            ip("198.51.100.8")
        );
        assert_eq!(
            client_addr(ip("10.0.0.5"), xff("[2001:db8::1]:443"), &trusted),
            ip("2001:db8::1")
        );
        // Garbage or no header: the proxy itself.
        assert_eq!(
            client_addr(ip("10.0.0.5"), xff("unknown"), &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_addr(ip("10.0.0.5"), std::iter::empty(), &trusted),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            limit_key(ip("2001:db8:1:2:ffff::9")),
            limit_key(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:3::1")),
            limit_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.4")), "192.0.2.4");
        assert_eq!(limit_key(ip("192.0.2.4")), "192.0.2.4");
    }
}
