//! Fuzz the DHCPv4 server: arbitrary bytes are split into records, each
//! decoded with dhcproto (through `vbng_access::dhcpv4::decode`, which
//! screens the option lengths dhcproto 0.15 `debug_assert!`s on) and, if it
//! decodes, fed to one server as a message from one of a few clients with a
//! varying authorization and clock. The server must never panic, replies
//! must encode and decode again, and no two leases may share an address.
#![no_main]

use std::collections::HashSet;
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use vbng_access::dhcproto::Encodable;
use vbng_access::dhcpv4::{
    Authorization, ClientContext, ClientKey, DhcpServer, PoolConfig, decode,
};

fn server() -> DhcpServer {
    let small = PoolConfig {
        name: "small".into(),
        network: Ipv4Addr::new(10, 0, 0, 0),
        prefix_len: 29,
        gateway: Ipv4Addr::new(10, 0, 0, 1),
        range_start: Ipv4Addr::new(10, 0, 0, 1),
        range_end: Ipv4Addr::new(10, 0, 0, 4),
        dns: vec![],
        lease_time_s: 5,
    };
    DhcpServer::new(vec![PoolConfig::default(), small]).expect("valid pools")
}

fuzz_target!(|data: &[u8]| {
    let mut srv = server();
    let mut now = 0u64;
    let mut rest = data;
    // Record: [control, len_hi, len_lo, message bytes...]
    while rest.len() >= 3 {
        let control = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let (bytes, tail) = rest[3..].split_at(len);
        rest = tail;
        now += u64::from(control >> 4) * 1000;
        let key = ClientKey {
            up: 0,
            port: 1,
            svlan: 0,
            cvlan: 0,
            mac: [2, 0, 0, 0, 0, control & 3],
        };
        let ctx = ClientContext {
            key,
            circuit_id: None,
            remote_id: None,
        };
        let mut authorize = |_: &ClientContext| match (control >> 2) & 3 {
            0 => Authorization::Deny,
            1 => Authorization::Allow {
                pool: "small".into(),
                fixed_ipv4: None,
            },
            2 => Authorization::Allow {
                pool: "default".into(),
                fixed_ipv4: Some(Ipv4Addr::new(100, 64, 0, 5)),
            },
            _ => Authorization::Allow {
                pool: "default".into(),
                fixed_ipv4: None,
            },
        };
        if let Ok(msg) = decode(bytes) {
            let handled = srv.handle(now, &ctx, &msg, &mut authorize);
            if let Some(reply) = handled.reply {
                let wire = reply.msg.to_vec().expect("reply encodes");
                decode(&wire).expect("reply decodes");
            }
        }
        let _ = srv.poll(now);
        let mut seen = HashSet::new();
        for lease in srv.leases() {
            assert!(seen.insert(lease.ipv4), "two leases share {}", lease.ipv4);
        }
    }
});
