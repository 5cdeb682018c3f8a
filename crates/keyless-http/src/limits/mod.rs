//! Bounds on what one client can hold of the server: connections, and the time a
//! connection may spend handshaking, sending a request head, sending a body, or idle.
//! See `docs/design/abuse.md` for what each limit bounds and why the defaults.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while a keep-alive
//! connection waits for its next request, so it would close idle connections after the
//! (short) header timeout instead of the (long) idle timeout, breaking the keep-alive
//! pools of ingresses and SDK clients. [`activity`] times both phases itself.

mod activity;
mod body;
mod cap;
mod per_address;
mod service;

use std::time::Duration;

pub(crate) use body::BodyDeadline;
pub(crate) use cap::ConnectionCap;
pub(crate) use service::LimitedAcceptor;

use std::net::{IpAddr, Ipv6Addr};

/// The key connections and failures are counted under: the IPv4 address (also when
/// IPv4-mapped), or the IPv6 /64 — one host can hold a whole /64, so single IPv6
/// addresses are free to an attacker.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
        v4 => v4,
    }
}

/// The limits of one listener. `None` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a TLS handshake may take.
    pub tls_handshake: Duration,
    /// Time from the first byte of an HTTP/1 request head to its end.
    pub header_read: Option<Duration>,
    /// Time from the end of a request head to the end of its body.
    pub body_read: Option<Duration>,
    /// Time a connection may stay open with no request in flight.
    pub idle: Option<Duration>,
    /// Connections served at once; more wait in the listener's accept backlog.
    pub max_connections: Option<usize>,
    /// Connections held at once from one peer address (IPv6: one /64); more are
    /// closed when accepted, before their TLS handshake.
    pub max_connections_per_address: Option<usize>,
    /// Streams (requests) in flight at once on one HTTP/2 connection, advertised in
    /// SETTINGS_MAX_CONCURRENT_STREAMS: one connection cannot multiply itself into
    /// thousands of concurrent requests past the connection cap.
    pub max_http2_streams: u32,
}

impl Default for ConnectionLimits {
    /// The defaults of `keyless serve`: far above what a real client needs.
    fn default() -> Self {
        Self {
            tls_handshake: Duration::from_secs(10),
            header_read: Some(Duration::from_secs(10)),
            body_read: Some(Duration::from_secs(10)),
            idle: Some(Duration::from_secs(120)),
            max_connections: Some(10_000),
            max_connections_per_address: Some(4_000),
            max_http2_streams: 100,
        }
    }
}
