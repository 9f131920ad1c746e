//! Hosts behind this machine for packets from runners: each in a network namespace of
//! its own, answering on port 80 with its tag; a denylist names it by its /30.

use std::net::{Ipv4Addr, SocketAddr};

use crate::firewall_support::{free_octet, Netns, Responder};

/// A host in a network namespace of its own behind this machine, answering with its tag.
pub struct Host {
    // The responder's thread leaves its namespace before the namespace goes.
    responder: Responder,
    _ns: Netns,
    /// The /30 it sits in, as a denylist names it.
    pub cidr: String,
}

impl Host {
    /// `kind` and `tag` name its namespace and veth (at most 15 characters in all).
    pub fn start(kind: &str, tag: &str, seed: u32) -> Host {
        let id = std::process::id() % 100_000;
        let s = free_octet(seed);
        let (host_side, inside) = (Ipv4Addr::new(10, 217, s, 1), Ipv4Addr::new(10, 217, s, 2));
        let ns = Netns::create(
            &format!("ghr{kind}{tag}{id}"),
            &format!("g{kind}{tag}{id}"),
            host_side,
            inside,
        );
        let ns = ns.unwrap();
        let responder = Responder::start(Some(&ns.name), SocketAddr::from((inside, 80)), tag);
        Host {
            responder: responder.unwrap(),
            _ns: ns,
            cidr: format!("10.217.{s}.0/30"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.responder.addr
    }
}
