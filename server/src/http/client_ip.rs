//! The client's IP address: the socket's peer, unless that peer is a configured trusted proxy
//! (PORTAL_TRUSTED_PROXIES); then the right-most X-Forwarded-For entry that is not itself a
//! trusted proxy. Entries left of it could be made up by the client, so they are never used.

use axum::extract::ConnectInfo;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

pub fn from_request<B>(request: &axum::http::Request<B>, trusted: &[IpNet]) -> Option<IpAddr> {
    from_parts(request.extensions(), request.headers(), trusted)
}

pub fn from_parts(
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    Some(resolve(peer, forwarded_for(headers), trusted))
}

fn forwarded_for(headers: &axum::http::HeaderMap) -> Vec<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|entry| entry.trim().parse::<IpAddr>().ok())
        .collect::<Option<Vec<_>>>()
        // A malformed header is ignored as a whole.
        .unwrap_or_default()
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&ip))
}

fn resolve(peer: IpAddr, forwarded: Vec<IpAddr>, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded.into_iter().rev() {
        client = hop;
        if !is_trusted(hop, trusted) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let forwarded = vec![ip("1.2.3.4"), ip("203.0.113.7"), ip("10.0.0.5")];
        assert_eq!(
            resolve(ip("198.51.100.1"), forwarded.clone(), &trusted),
            ip("198.51.100.1"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), forwarded, &trusted),
            ip("203.0.113.7"),
            "the right-most untrusted hop, not the client-supplied left entry"
        );
        assert_eq!(resolve(ip("10.0.0.2"), vec![], &trusted), ip("10.0.0.2"));
        assert_eq!(
            resolve(ip("::ffff:10.0.0.2"), vec![ip("192.0.2.1")], &trusted),
            ip("192.0.2.1")
        );
    }
}
