//! The client address of a request (SPEC §3.6): the socket peer, or — when the peer is
//! one of the trusted proxies (`USER_ENGINE_TRUSTED_PROXIES`) — the nearest untrusted hop
//! of `Forwarded` (RFC 7239) or `X-Forwarded-For`.
//!
//! Forwarding headers are lists a client can start with anything it likes; each proxy
//! appends the address it received the request from. So the list is read from the
//! right: every hop a trusted proxy added is believed, and the first address that is not
//! a trusted proxy is the client. Entries left of it are the client's own words and are
//! never read. A hop that names no address (`unknown`, an obfuscated identifier) ends
//! the walk at the last trusted proxy: nothing left of it can be attributed.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::{header::FORWARDED, HeaderMap};
use ipnet::IpNet;

/// `X-Forwarded-For`, which `http` has no constant for.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Parses `USER_ENGINE_TRUSTED_PROXIES`: comma-separated CIDRs (a bare address counts as
/// a /32 or /128); empty entries are skipped.
///
/// # Errors
/// The first entry that is neither, with an example of what is expected.
pub fn parse_proxies(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map(|network| network.trunc())
                .map_err(|_| {
                    format!(
                        "{entry:?} is not a CIDR; list networks such as 10.0.0.0/8,fd00::/8 \
                         separated by commas"
                    )
                })
        })
        .collect()
}

fn trusted(address: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|network| network.contains(&address))
}

/// The client address of a request that came from `peer` with `headers`.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    let forwarded = forwarded_hops(headers);
    let forwarded_for = x_forwarded_for_hops(headers);
    match (forwarded, forwarded_for) {
        (None, None) => peer,
        (Some(hops), None) | (None, Some(hops)) => walk(peer, &hops, proxies),
        // A proxy writes one of the two; the other then came from the client. When they
        // disagree there is no telling which one the proxy wrote, so the request counts
        // as the proxy's own: a forged header buys the client nothing.
        (Some(forwarded), Some(forwarded_for)) => {
            let one = walk(peer, &forwarded, proxies);
            let other = walk(peer, &forwarded_for, proxies);
            if one == other {
                one
            } else {
                peer
            }
        }
    }
}

/// Walks `hops` (left to right as sent) from the right, starting at the trusted `peer`.
fn walk(peer: IpAddr, hops: &[Option<IpAddr>], proxies: &[IpNet]) -> IpAddr {
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        let Some(address) = hop else {
            return nearest;
        };
        let address = address.to_canonical();
        if !trusted(address, proxies) {
            return address;
        }
        nearest = address;
    }
    nearest
}

/// Every value of a header, in order, joined as one list (RFC 9110 §5.3).
fn joined(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let texts: Vec<&str> = values
        .map(|value| value.to_str().unwrap_or("\u{fffd}"))
        .collect();
    Some(texts.join(","))
}

/// The hops of `X-Forwarded-For`: one address per comma-separated entry, `None` for an
/// entry that is not one.
fn x_forwarded_for_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let list = joined(headers, X_FORWARDED_FOR)?;
    Some(list.split(',').map(|entry| node(entry.trim())).collect())
}

/// The hops of `Forwarded`: the `for` parameter of each element, `None` for an element
/// without one or whose node is not an address.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let list = joined(headers, FORWARDED)?;
    Some(
        split_unquoted(&list, ',')
            .into_iter()
            .map(|element| {
                split_unquoted(element, ';').into_iter().find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| unquote(value.trim()))
                })
            })
            .map(|value| value.and_then(|value| node(&value)))
            .collect(),
    )
}

/// Splits at `separator` outside double-quoted strings (RFC 7239 §4 values may be
/// quoted, and a quoted string may hold the separator).
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if character == separator && !quoted => {
                parts.push(text.get(start..index).unwrap_or_default());
                start = index + character.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or_default());
    parts
}

/// A token or a quoted string's content (with `\x` escapes undone).
fn unquote(value: &str) -> String {
    match value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) => {
            let mut text = String::with_capacity(inner.len());
            let mut escaped = false;
            for character in inner.chars() {
                if escaped || character != '\\' {
                    text.push(character);
                    escaped = false;
                } else {
                    escaped = true;
                }
            }
            text
        }
        None => value.to_owned(),
    }
}

/// A node: `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`, `[2001:db8::1]:8080`, or (in
/// `X-Forwarded-For`, which some proxies write so) a bare `2001:db8::1`. `unknown` and
/// obfuscated identifiers are not addresses.
fn node(text: &str) -> Option<IpAddr> {
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    let inner = text.strip_prefix('[')?;
    let (address, _port) = inner.split_once(']')?;
    address.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed expectation aborts the test"
)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn proxies() -> Vec<IpNet> {
        parse_proxies("10.0.0.0/8, fd00::/8,192.0.2.1").unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_headers_say() {
        let sent = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(
            client_address(ip("198.51.100.4"), &sent, &proxies()),
            ip("198.51.100.4")
        );
        assert_eq!(
            client_address(ip("198.51.100.4"), &sent, &[]),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_nearest_untrusted_hop_is_the_client() {
        let sent = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &sent, &proxies()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn spoofed_left_most_entries_are_ignored() {
        // The client sent "1.1.1.1, 2.2.2.2"; the edge proxy appended the client's real
        // address, an inner proxy the edge's.
        let sent = headers(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &sent, &proxies()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn several_header_lines_make_one_list_in_order() {
        let sent = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.7"),
        ]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &sent, &proxies()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn when_every_hop_is_trusted_the_left_most_is_the_client() {
        let sent = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.7")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &sent, &proxies()),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn without_forwarding_headers_a_trusted_peer_is_the_client() {
        assert_eq!(
            client_address(ip("10.1.2.3"), &HeaderMap::new(), &proxies()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn ipv6_hops_and_peers_are_read() {
        let sent = headers(&[("x-forwarded-for", "2001:db8::1, [2001:db8::2]:443, fd00::5")]);
        assert_eq!(
            client_address(ip("fd00::1"), &sent, &proxies()),
            ip("2001:db8::2")
        );
        // An IPv4 peer seen through an IPv6 socket is the IPv4 address.
        let plain = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_address(ip("::ffff:10.1.2.3"), &plain, &proxies()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_quoting_ports_and_parameters_are_understood() {
        let sent = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.7, \
             For=\"10.0.0.8:1234\"",
        )]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &sent, &proxies()),
            ip("2001:db8:cafe::17")
        );
        let ipv4 = headers(&[("forwarded", "proto=http;for=203.0.113.60:8080;host=x")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &ipv4, &proxies()),
            ip("203.0.113.60")
        );
    }

    #[test]
    fn a_quoted_comma_does_not_split_a_forwarded_element() {
        let sent = headers(&[("forwarded", "for=203.0.113.9;host=\"a,b\"")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &sent, &proxies()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_unknown_or_obfuscated_hop_stops_at_the_last_trusted_proxy() {
        for value in [
            "for=203.0.113.9, for=unknown",
            "for=1.2.3.4, for=_hidden, for=10.0.0.7",
        ] {
            let sent = headers(&[("forwarded", value)]);
            let expected = if value.ends_with("10.0.0.7") {
                ip("10.0.0.7")
            } else {
                ip("10.1.2.3")
            };
            assert_eq!(
                client_address(ip("10.1.2.3"), &sent, &proxies()),
                expected,
                "{value}"
            );
        }
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, not-an-address")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &garbage, &proxies()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn both_headers_disagreeing_count_as_the_proxy_itself() {
        let forged = headers(&[
            ("forwarded", "for=1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &forged, &proxies()),
            ip("10.1.2.3")
        );
        let agreeing = headers(&[
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &agreeing, &proxies()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        assert_eq!(parse_proxies("").unwrap(), Vec::<IpNet>::new());
        assert_eq!(
            parse_proxies(" 10.0.0.1/8 ,192.0.2.1,, ::1 ").unwrap(),
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.0.2.1/32".parse().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        let error = parse_proxies("10.0.0.0/8,10.0.0.0/33").unwrap_err();
        assert!(error.contains("10.0.0.0/33"), "{error}");
        assert!(parse_proxies("proxy.internal").is_err());
    }
}
