//! The client's address behind reverse proxies.
//!
//! `X-Forwarded-For` is whatever the client wrote, plus one entry per proxy it went through,
//! each appended on the right by that proxy. Only the entries that trusted proxies appended can
//! be believed, so the header is read only when the peer itself is a trusted proxy, and from
//! the right: the first address not in a trusted range is the one a trusted proxy saw connect.
//! Everything left of it may be made up (e.g. to get a fresh sign-in limit per attempt).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Address ranges of the reverse proxies (load balancers, ingress controllers) in front of the
/// API, whose `X-Forwarded-For` is believed. Empty: the header is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A trusted proxy range that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an address range (CIDR like 10.0.0.0/8 or fd00::/8) nor an address")]
pub struct BadProxyRange(String);

impl FromStr for TrustedProxies {
    type Err = BadProxyRange;

    /// Comma-separated ranges (`10.0.0.0/8, 192.168.1.7`); a bare address is a range of one.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| BadProxyRange(s.to_owned()))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> Self {
        TrustedProxies(ranges)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client's address: `peer` (who connected to us) unless `peer` is a trusted proxy;
    /// then the rightmost `X-Forwarded-For` entry that is not a trusted proxy. An entry that
    /// does not parse stops the walk at the last trusted hop before it: what is left of it
    /// cannot be trusted to be in order. When every entry is trusted, the leftmost is the
    /// client (e.g. a client on the proxies' own network).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut last_trusted = peer;
        // Several header lines form one list, in order (RFC 9110, 5.3).
        for line in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(line) = line.to_str() else {
                return last_trusted;
            };
            for entry in line.rsplit(',') {
                let Some(address) = parse_entry(entry) else {
                    return last_trusted;
                };
                if !self.trusts(address) {
                    return address;
                }
                last_trusted = address;
            }
        }
        last_trusted
    }
}

/// An `X-Forwarded-For` entry: an address, or an address and a port as some proxies write it.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|a| a.to_canonical())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn ranges_parse_from_a_comma_separated_list() {
        let proxies: TrustedProxies = " 10.0.0.0/8, 192.168.1.7 ,fd00::/8,".parse().unwrap();
        assert_eq!(proxies.0.len(), 3);
        assert!(proxies.trusts(ip("10.20.30.40")));
        assert!(proxies.trusts(ip("192.168.1.7")));
        assert!(!proxies.trusts(ip("192.168.1.8")));
        assert!(proxies.trusts(ip("fd12::1")));
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        let err = "10.0.0.0/8,nonsense".parse::<TrustedProxies>().unwrap_err();
        assert!(err.to_string().contains("nonsense"), "{err}");
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let proxies = TrustedProxies::default();
        let headers = xff(&["203.0.113.9"]);
        assert_eq!(
            proxies.client_address(ip("198.51.100.1"), &headers),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let headers = xff(&["203.0.113.9, 10.0.0.5"]);
        assert_eq!(
            proxies.client_address(ip("198.51.100.1"), &headers),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_trusted_peer_gives_the_address_it_saw() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            proxies.client_address(ip("10.0.0.2"), &xff(&["203.0.113.9"])),
            ip("203.0.113.9")
        );
        // Through two trusted proxies: the second appended the first's address.
        assert_eq!(
            proxies.client_address(ip("10.0.0.2"), &xff(&["203.0.113.9, 10.0.0.3"])),
            ip("203.0.113.9")
        );
        // Across several header lines, with a port, and the peer as IPv4-mapped IPv6.
        assert_eq!(
            proxies.client_address(
                ip("::ffff:10.0.0.2"),
                &xff(&["203.0.113.9:51234", "10.0.0.3"])
            ),
            ip("203.0.113.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_address(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn spoofed_leftmost_entries_are_ignored() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        // The client sent `X-Forwarded-For: 1.2.3.4, 10.9.9.9`; the proxy appended its address.
        let headers = xff(&["1.2.3.4, 10.9.9.9, 198.51.100.7"]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.2"), &headers),
            ip("198.51.100.7")
        );
        // Every entry trusted: the leftmost is the client.
        let headers = xff(&["10.1.1.1, 10.0.0.3"]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.2"), &headers),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_trusted_hop() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let peer = ip("10.0.0.2");
        for garbage in [
            "not an address",
            "",
            "203.0.113.9,,",
            "unknown, 10.0.0.3",
            "203.0.113.9, 999.1.1.1",
        ] {
            let expected = if garbage.ends_with("10.0.0.3") {
                ip("10.0.0.3")
            } else {
                peer
            };
            assert_eq!(
                proxies.client_address(peer, &xff(&[garbage])),
                expected,
                "{garbage:?}"
            );
        }
        // Not even text.
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(proxies.client_address(peer, &headers), peer);
    }
}
