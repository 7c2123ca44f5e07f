//! The embedded TURN server relays only between its own allocations: a
//! permission, channel binding or send naming any peer address other than
//! this server's relayed address (and its allocation ports) is dropped
//! before the TURN implementation sees it. A caller therefore cannot use a
//! Ferry relay to reach anything else (an internal service, another host,
//! a browser's own address), and a call's media only ever flows between
//! two allocations here.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use medea_turn::attr::Attribute;
use medea_turn::transport::{self, Request, Transport};
use stun_codec::Message;
use stun_codec::rfc5766::methods::{CHANNEL_BIND, CREATE_PERMISSION, SEND};

/// A transport that drops requests naming a foreign peer.
pub(crate) struct PeerGuard {
    pub(crate) inner: Arc<dyn Transport + Send + Sync>,
    pub(crate) relay_ip: IpAddr,
    pub(crate) ports: RangeInclusive<u16>,
    pub(crate) refused: Arc<AtomicU64>,
}

impl PeerGuard {
    fn allowed(&self, msg: &Message<Attribute>) -> bool {
        let method = msg.method();
        if method != CREATE_PERMISSION && method != CHANNEL_BIND && method != SEND {
            return true;
        }
        msg.attributes().all(|a| match a {
            Attribute::XorPeerAddress(p) => own_peer(p.address(), self.relay_ip, &self.ports),
            _ => true,
        })
    }
}

/// Whether `peer` is one of this server's allocations.
pub(crate) fn own_peer(peer: SocketAddr, relay_ip: IpAddr, ports: &RangeInclusive<u16>) -> bool {
    peer.ip() == relay_ip && ports.contains(&peer.port())
}

#[async_trait::async_trait]
impl Transport for PeerGuard {
    async fn recv_from(&self) -> Result<(Request, SocketAddr), transport::Error> {
        loop {
            let (req, from) = self.inner.recv_from().await?;
            if let Request::Message(m) = &req
                && !self.allowed(m)
            {
                self.refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            return Ok((req, from));
        }
    }

    async fn send_to(
        &self,
        data: Cow<'_, [u8]>,
        target: SocketAddr,
    ) -> Result<(), transport::Error> {
        self.inner.send_to(data, target).await
    }

    async fn send_msg_to(
        &self,
        msg: Message<Attribute>,
        dst: SocketAddr,
    ) -> Result<(), transport::Error> {
        self.inner.send_msg_to(msg, dst).await
    }

    fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    fn proto(&self) -> u8 {
        self.inner.proto()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_allocation_ports_are_peers() {
        let ip: IpAddr = [127, 0, 0, 2].into();
        let ports = 50_000..=50_100;
        assert!(own_peer(SocketAddr::new(ip, 50_000), ip, &ports));
        assert!(own_peer(SocketAddr::new(ip, 50_100), ip, &ports));
        assert!(!own_peer(SocketAddr::new(ip, 49_999), ip, &ports));
        assert!(!own_peer(SocketAddr::new(ip, 7070), ip, &ports));
        assert!(!own_peer(
            SocketAddr::new([127, 0, 0, 1].into(), 50_000),
            ip,
            &ports
        ));
        assert!(!own_peer(
            SocketAddr::new([10, 0, 0, 1].into(), 50_000),
            ip,
            &ports
        ));
    }
}
