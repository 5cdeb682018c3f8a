//! A cap on connections held at once from one peer address, checked when a TCP
//! connection is accepted and before its TLS handshake costs anything: one client
//! cannot take every slot of the global cap. IPv6 peers count per /64.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Connections held per address.
#[derive(Debug)]
pub(crate) struct AddressSlots {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl AddressSlots {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, or `None` when it holds `max`.
    /// The map only has addresses with open connections, so the global connection
    /// cap bounds it.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = super::address_key(ip);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(key).or_insert(0);
        if *n >= self.max {
            if *n == 0 {
                held.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            slots: Arc::clone(self),
            key,
        })
    }

    #[cfg(test)]
    fn held(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&super::address_key(ip)).copied().unwrap_or(0)
    }
}

/// One connection's slot, given back when the connection ends (dropped).
#[derive(Debug)]
pub(crate) struct AddressSlot {
    slots: Arc<AddressSlots>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// What the acceptor needs of an accepted stream: its peer.
pub(crate) trait PeerAddress {
    /// The peer's IP address, if the stream knows it.
    fn peer_ip(&self) -> Option<IpAddr>;
}

impl PeerAddress for tokio::net::TcpStream {
    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer_addr().ok().map(|a| a.ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_address_and_given_back() {
        let slots = AddressSlots::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b_neighbour: IpAddr = "2001:db8::ffff".parse().unwrap();
        let a1 = slots.acquire(a).unwrap();
        let a2 = slots.acquire(a).unwrap();
        assert!(slots.acquire(a).is_none());
        let b1 = slots.acquire(b).unwrap();
        let _b2 = slots.acquire(b_neighbour).unwrap();
        assert!(slots.acquire(b).is_none(), "the /64 shares the cap");
        drop(a1);
        assert_eq!(slots.held(a), 1);
        let _a3 = slots.acquire(a).unwrap();
        drop(a2);
        drop(b1);
        assert_eq!(slots.held(b), 1);
    }
}
