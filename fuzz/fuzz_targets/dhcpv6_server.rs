//! Arbitrary DHCPv6 messages through one `Dhcpv6Server` link, and the same
//! bytes as an IPv6 packet through a `RouterAdvertiser`.
//!
//! Input layout: a sequence of records `[op, len, bytes...]`. `op % 4`
//! chooses the step: 0 and 1 feed `bytes` to the DHCPv6 server on link 1
//! or 2, 2 closes and reopens link 1, 3 feeds `bytes` as an IPv6 packet to
//! the router. Replies must decode; pool usage must stay within bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbng_access::dhcpv6::{self, Dhcpv6Server, Ipv6PoolConfig, LinkRequest};
use vbng_access::ipv6::packet;
use vbng_access::ipv6::ra::{RaConfig, RouterAdvertiser};

fn server() -> Dhcpv6Server {
    let pool = Ipv6PoolConfig {
        name: "p".into(),
        prefix: Some("2001:db8:100::/63".parse().unwrap()),
        pd_prefix: Some("2001:db8:200::/55".parse().unwrap()),
        pd_length: 56,
        dns: vec!["2001:db8::53".parse().unwrap()],
        slaac: false,
        lease_time_s: 60,
    };
    Dhcpv6Server::new(dhcpv6::duid_ll([2, 0, 0, 0, 0, 1]), vec![pool], true).expect("valid pool")
}

fn request() -> LinkRequest {
    LinkRequest {
        pool: "p".into(),
        peer_interface_id: 0x1234,
        framed_prefix: None,
        delegated_prefix: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut srv = server();
    let _ = srv.open_link(1, request());
    let _ = srv.open_link(2, request());
    let mut router = RouterAdvertiser::new(RaConfig::default(), 0x5eff_fe00_0101, None);
    let mut rest = data;
    while rest.len() >= 2 {
        let (op, len) = (rest[0], rest[1]);
        rest = &rest[2..];
        let take = usize::from(len).min(rest.len());
        let (bytes, tail) = rest.split_at(take);
        rest = tail;
        match op % 4 {
            n @ 0..=1 => {
                if let Some(reply) = srv.handle(u64::from(n) + 1, bytes).reply {
                    dhcpv6::decode(&reply).expect("our replies decode");
                }
            }
            2 => {
                srv.close_link(1);
                let _ = srv.open_link(1, request());
            }
            _ => {
                if let Ok(p) = packet::parse(bytes)
                    && let Some(reply) = router.input(&p)
                {
                    packet::parse(&reply).expect("our packets parse");
                }
            }
        }
        let (links, addrs, delegated) = srv.pool_usage("p").expect("the pool");
        assert!(links <= 2 && addrs == 0 && delegated <= 2);
    }
});
