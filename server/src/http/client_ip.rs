//! The client's IP address: the socket's peer. (Trusted reverse proxies, whose
//! `X-Forwarded-For` may be believed, come with the accounts work.)

use axum::extract::ConnectInfo;
use std::net::{IpAddr, SocketAddr};

pub fn from_request<B>(request: &axum::http::Request<B>) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}
