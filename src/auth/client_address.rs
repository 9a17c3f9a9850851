//! Which address a request comes from, for the throttles and the request log. Behind a reverse
//! proxy every connection comes from the proxy, so one noisy client would lock everybody out; the
//! proxies named with `--trusted-proxies` are trusted to report the client in `X-Forwarded-For`.
//! Nobody else is: a client can put anything in that header.

use std::net::IpAddr;

/// An address or a network (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(raw: &str) -> Option<Network> {
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let address: IpAddr = address.trim().parse().ok()?;
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse().ok().filter(|p| *p <= width)?,
            None => width,
        };
        Some(Network { address, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `::ffff:10.0.0.1` is `10.0.0.1`: a dual-stack listener reports IPv4 peers that way.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Network>,
}

impl TrustedProxies {
    /// A comma-separated list of addresses and networks; empty trusts nobody.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let networks = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                Network::parse(entry).ok_or_else(|| {
                    format!("'{entry}' is not an IP address or a network like 10.0.0.0/8")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies { networks })
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|network| network.contains(ip))
    }

    /// The client behind `peer`: walking `X-Forwarded-For` from the right (each proxy appends
    /// the address it saw), the first hop that isn't a trusted proxy. Anything left of it was
    /// written by the client and is ignored, as is the whole header when `peer` isn't trusted.
    pub fn client_address<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusts(peer) {
            return Some(peer);
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        break;
                    }
                }
                // A hop a trusted proxy couldn't have written: stop at the last known one.
                Err(_) => break,
            }
        }
        Some(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> Option<IpAddr> {
        Some(raw.parse().expect("ip"))
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        let header = ["203.0.113.9"];
        assert_eq!(
            none.client_address(ip("127.0.0.1"), header.into_iter()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_proxy_reports_the_client_and_spoofed_hops_are_ignored() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").expect("parse");
        let client =
            |peer: &str, header: &[&str]| trusted.client_address(ip(peer), header.iter().copied());
        assert_eq!(client("127.0.0.1", &["203.0.113.9"]), ip("203.0.113.9"));
        // The client wrote 1.2.3.4 itself; the proxy appended what it saw.
        assert_eq!(
            client("127.0.0.1", &["1.2.3.4, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Two trusted proxies in a row, and the header split over two lines.
        assert_eq!(
            client("127.0.0.1", &["203.0.113.9", "10.1.2.3"]),
            ip("203.0.113.9")
        );
        // No header, or garbage: the proxy itself is all we know.
        assert_eq!(client("127.0.0.1", &[]), ip("127.0.0.1"));
        assert_eq!(client("10.0.0.5", &["not an ip"]), ip("10.0.0.5"));
        assert_eq!(client("127.0.0.1", &["203.0.113.9, junk"]), ip("127.0.0.1"));
        // An untrusted peer's header is not believed.
        assert_eq!(client("198.51.100.1", &["203.0.113.9"]), ip("198.51.100.1"));
        // IPv4-mapped IPv6 peers match IPv4 entries.
        assert_eq!(
            client("::ffff:127.0.0.1", &["2001:db8::1"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn the_list_is_checked() {
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
        assert!(TrustedProxies::parse("fd00::/8,192.168.0.0/16").is_ok());
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.1/", "::/129"] {
            let error = TrustedProxies::parse(bad).expect_err(bad);
            assert!(
                error.contains(bad.split('/').next().unwrap_or(bad)),
                "{error}"
            );
        }
        let everything = TrustedProxies::parse("0.0.0.0/0").expect("parse");
        assert!(everything.trusts("8.8.8.8".parse().expect("ip")));
    }
}
