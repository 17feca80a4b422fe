//! Every wire parser and Repr of vbng-dataplane on arbitrary bytes: parsing never panics,
//! and whatever parses re-emits to bytes that parse to the same Repr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use vbng_dataplane::rss::{
    DEFAULT_RSS_KEY, Ipv6OwnerChange, Ipv6Owners, Owner, WorkerMap, frame_owner,
};
use vbng_dataplane::wire::frame::L2Header;
use vbng_dataplane::wire::{
    ArpRepr, EthernetRepr, GtpuRepr, Icmpv4Repr, Ipv4Repr, TcpRepr, UdpRepr, VlanRepr, arp,
    checksum, ethernet, icmpv4, ipv4, tcp, udp, vlan,
};

static WORKER_MAP: OnceLock<WorkerMap> = OnceLock::new();
static IPV6_OWNERS: OnceLock<Ipv6Owners> = OnceLock::new();

/// Two nested IPv6 prefixes with owners: 2000::/3 (worker 2) and 2001:db8::/32 (worker 1).
fn ipv6_owners() -> Ipv6Owners {
    let mut owners = Ipv6Owners::new();
    for (top, len, owner) in [(0x2000_u64 << 48, 3, 2), (0x2001_0db8_u64 << 32, 32, 1)] {
        owners.apply(Ipv6OwnerChange {
            top,
            len,
            owner: Some(owner),
        });
    }
    owners
}

fuzz_target!(|data: &[u8]| {
    // Worker ownership reads the same headers; any bytes give some owner in range.
    let map = WORKER_MAP.get_or_init(|| WorkerMap::new(&DEFAULT_RSS_KEY, 3));
    let ipv6 = IPV6_OWNERS.get_or_init(ipv6_owners);
    for from_access in [true, false] {
        if let Owner::Worker(w) = frame_owner(map, ipv6, data, from_access) {
            assert!(w < 3);
        }
    }
    if let Ok((l2, off)) = L2Header::parse(data) {
        assert!(off <= data.len());
        let mut b = [0u8; 22];
        l2.emit(&mut b);
        let (again, off2) = L2Header::parse(&b[..l2.buffer_len()]).expect("emitted L2 parses");
        assert_eq!(off2, l2.buffer_len());
        assert_eq!(again.ethertype, l2.ethertype);
        let _ = Ipv4Repr::parse(&data[off..]);
    }
    if let Ok(r) = EthernetRepr::parse(data) {
        let mut b = [0u8; ethernet::HEADER_LEN];
        r.emit(&mut b);
        assert_eq!(EthernetRepr::parse(&b), Ok(r));
    }
    if let Ok(r) = VlanRepr::parse(data) {
        let mut b = [0u8; vlan::TAG_LEN];
        r.emit(&mut b);
        assert_eq!(VlanRepr::parse(&b), Ok(r));
    }
    if let Ok(r) = ArpRepr::parse(data) {
        let mut b = [0u8; arp::PACKET_LEN];
        r.emit(&mut b);
        assert_eq!(ArpRepr::parse(&b), Ok(r));
    }
    if let Ok(r) = Ipv4Repr::parse(data) {
        let h = ipv4::Header::parse(data).expect("repr parsed, header parses");
        let payload = &data[h.header_len()..usize::from(h.total_len())];
        let mut b = vec![0u8; ipv4::HEADER_LEN + payload.len()];
        r.emit(&mut b);
        assert_eq!(Ipv4Repr::parse(&b), Ok(r));
        let _ = UdpRepr::parse(payload);
        let _ = udp::verify_checksum(r.src_addr, r.dst_addr, payload);
        let _ = TcpRepr::parse(payload);
        let _ = Icmpv4Repr::parse(payload);
    }
    if let Ok(mut h) = ipv4::Header::parse(data).copied() {
        h.decrement_ttl();
        let _ = h.checksum();
    }
    if let Ok(r) = UdpRepr::parse(data) {
        let mut b = vec![0u8; udp::HEADER_LEN + usize::from(r.payload_len)];
        r.emit(&mut b);
        assert_eq!(UdpRepr::parse(&b), Ok(r));
    }
    if let Ok(r) = TcpRepr::parse(data) {
        let mut b = [0u8; tcp::HEADER_LEN];
        r.emit(&mut b);
        assert_eq!(TcpRepr::parse(&b), Ok(r));
    }
    if let Ok(r) = Icmpv4Repr::parse(data) {
        let mut b = data.to_vec();
        r.emit(&mut b);
        assert_eq!(Icmpv4Repr::parse(&b), Ok(r));
        let _ = icmpv4::Header::parse(data);
    }
    if let Ok((r, off)) = GtpuRepr::parse(data) {
        assert!(off <= data.len());
        let (_, inner) = GtpuRepr::parse_payload(data).expect("parse_payload agrees with parse");
        let b = r.encapsulate(inner).expect("inner payload fits");
        assert_eq!(GtpuRepr::parse_payload(&b), Ok((r, inner)));
    }
    let _ = checksum::checksum(data);
    if data.len() >= 6 {
        let old = u16::from_be_bytes([data[0], data[1]]);
        let new = u16::from_be_bytes([data[2], data[3]]);
        let _ = checksum::update_u16(u16::from_be_bytes([data[4], data[5]]), old, new);
    }
});
