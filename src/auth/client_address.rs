//! Which address a request comes from, for the throttles and the request log. Behind a reverse
//! proxy every connection comes from the proxy, so one noisy client would lock everybody out; the
//! proxies named with `--trusted-proxies` are trusted to report the client in `X-Forwarded-For`.
//! Nobody else is: a client can put anything in that header.

use std::net::IpAddr;

use crate::config::{TrustedProxies, canonical};

/// The client behind `peer`: walking `X-Forwarded-For` from the right (each proxy appends
/// the address it saw), the first hop that isn't a trusted proxy. Anything left of it was
/// written by the client and is ignored, as is the whole header when `peer` isn't trusted.
pub fn client_address<'a>(
    trusted: &TrustedProxies,
    peer: Option<IpAddr>,
    forwarded_for: impl Iterator<Item = &'a str>,
) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if !trusted.trusts(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !trusted.trusts(client) {
                    break;
                }
            }
            // A hop a trusted proxy couldn't have written: stop at the last known one.
            Err(_) => break,
        }
    }
    Some(client)
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
            client_address(&none, ip("127.0.0.1"), header.into_iter()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_proxy_reports_the_client_and_spoofed_hops_are_ignored() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").expect("parse");
        let client = |peer: &str, header: &[&str]| {
            client_address(&trusted, ip(peer), header.iter().copied())
        };
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
}
