"""The "vbng-lab" traffic scheme: one subscriber session per index.

Subscriber ``i`` (``0 <= i < sessions``) owns:

* MAC ``02:10:ii:ii:ii:ii`` (the index, big-endian, in the last four bytes);
* IPv4 ``subscriber_base + i`` (u32 arithmetic, wrapping);
* server IPv4 ``server_base + (i % server_count)``;
* VLAN tags: none; ``single``: one 802.1Q tag, VID ``1 + i % 4000``;
  ``qinq``: outer 802.1Q tag VID ``100 + i // 4000``, inner 802.1Q tag VID
  ``1 + i % 4000`` (both TPID 0x8100, PCP 0, DEI 0);
* PPPoE session id ``1 + i % 65535`` (protocol ``pppoe`` only);
* UDP port ``10000 + i % 50000`` talking to server port 5201.

Upstream frames travel subscriber -> gateway (access side of the user plane):
``Ether / tags / [PPPoE / PPP] / IPv4 / UDP / zeros``.  Downstream frames
travel core router -> user plane: ``Ether / IPv4 / UDP / zeros``.

Sizes are wire sizes including the 4-byte FCS, so the built frame is
``size - 4`` bytes; the zero payload shrinks with the headers and is empty
(the frame longer) if the headers alone exceed the size.

Two builders produce the same bytes: ``upstream_frame``/``downstream_frame``
return scapy packets (the reference, and what the TRex profiles hand to
TRex), ``upstream_bytes``/``downstream_bytes`` pack the bytes directly with
``struct`` (fast enough to write pcaps of 100k sessions).  The tests hold
the two equal.
"""

import functools
import ipaddress
import struct
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple, Union

from scapy.fields import XShortField
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.ppp import PPPoE
from scapy.packet import Packet, Raw

DEFAULT_SESSIONS = 100
DEFAULT_SUBSCRIBER_BASE = "100.64.0.1"
DEFAULT_SERVER_BASE = "203.0.113.1"
DEFAULT_SERVER_COUNT = 254
DEFAULT_GATEWAY_MAC = "02:00:5e:00:01:01"
DEFAULT_CORE_MAC = "02:00:00:00:c0:01"
DEFAULT_NEXT_HOP_MAC = "02:00:5e:00:02:01"

PROTOCOLS = ("ipoe", "pppoe")
VLAN_LAYOUTS = ("none", "single", "qinq")
DIRECTIONS = ("up", "down")

#: Wire sizes (with FCS) of the IMIX and their weights, 7:4:1.
IMIX_SIZES = (64, 594, 1518)
IMIX_WEIGHTS = (7, 4, 1)
#: Size of packet ``k`` of a session in a pcap: ``IMIX_PATTERN[k % 12]``.
IMIX_PATTERN = (64,) * 7 + (594,) * 4 + (1518,)

#: Smallest and largest accepted wire size.
MIN_SIZE = 64
MAX_SIZE = 9216

FCS_LEN = 4
ETHER_LEN = 14
TAG_LEN = 4
PPPOE_LEN = 6
PPP_LEN = 2
IPV4_LEN = 20
UDP_LEN = 8

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_PPPOE_SESSION = 0x8864
PPP_IPV4 = 0x0021
IPPROTO_UDP = 17

SERVER_PORT = 5201
SUBSCRIBER_PORT_BASE = 10000
SUBSCRIBER_PORT_MODULUS = 50000
VLAN_MODULUS = 4000
INNER_VID_BASE = 1
OUTER_VID_BASE = 100
PPPOE_SESSION_MODULUS = 65535

IPV4_TTL = 64
IPV4_ID = 1


class PPPProtocol(Packet):
    """The PPP protocol field, always two bytes.

    scapy's own ``PPP`` layer applies protocol-field compression and emits
    0x0021 as one byte; the scheme's PPPoE session frames carry the
    uncompressed field (RFC 2516 section 7 recommends against PFC), so the
    scheme builds it with this layer.  scapy's ``PPP`` dissects it back.
    """

    name = "PPP protocol"
    fields_desc = [XShortField("proto", PPP_IPV4)]


def _ipv4(value: Union[str, int]) -> int:
    return int(ipaddress.IPv4Address(value))


def _mac(value: str) -> bytes:
    parts = value.split(":")
    if len(parts) != 6:
        raise ValueError("expected a MAC like 02:00:5e:00:01:01, found %r" % value)
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError("expected a MAC like 02:00:5e:00:01:01, found %r" % value) from None
    if any(len(p) not in (1, 2) for p in parts):
        raise ValueError("expected a MAC like 02:00:5e:00:01:01, found %r" % value)
    return raw


def _mac_str(raw: bytes) -> str:
    return ":".join("%02x" % b for b in raw)


def parse_size(value: Union[str, int]) -> Union[str, int]:
    """Turn ``"64"``, ``64`` or ``"imix"`` into ``64`` or ``"imix"``.

    Raises ``ValueError`` (one line naming the accepted forms) otherwise.
    """
    if isinstance(value, str):
        if value.strip().lower() == "imix":
            return "imix"
        try:
            value = int(value, 10)
        except ValueError:
            raise ValueError(
                "size: expected 'imix' or a wire size in bytes (%d..%d), found %r"
                % (MIN_SIZE, MAX_SIZE, value)
            ) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("size: expected 'imix' or an integer, found %r" % (value,))
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise ValueError(
            "size: expected a wire size (FCS included) in %d..%d, found %d"
            % (MIN_SIZE, MAX_SIZE, value)
        )
    return value


@dataclass(frozen=True)
class Params:
    """Parameters of the scheme; every field has the scheme's default.

    ``size`` is a wire size in bytes (FCS included) or ``"imix"``.
    ``packets_per_session`` is the number of frames each session gets in a
    pcap; ``None`` means 1 for a fixed size and 12 (one IMIX cycle) for imix.
    """

    sessions: int = DEFAULT_SESSIONS
    protocol: str = "ipoe"
    vlan: str = "none"
    subscriber_base: str = DEFAULT_SUBSCRIBER_BASE
    server_base: str = DEFAULT_SERVER_BASE
    server_count: int = DEFAULT_SERVER_COUNT
    gateway_mac: str = DEFAULT_GATEWAY_MAC
    core_mac: str = DEFAULT_CORE_MAC
    next_hop_mac: str = DEFAULT_NEXT_HOP_MAC
    size: Union[str, int] = 64
    packets_per_session: Optional[int] = None

    def __post_init__(self) -> None:
        if isinstance(self.sessions, bool) or not isinstance(self.sessions, int):
            raise ValueError("sessions: expected an integer, found %r" % (self.sessions,))
        if not 1 <= self.sessions <= 0xFFFFFFFF:
            raise ValueError("sessions: expected 1..4294967295, found %d" % self.sessions)
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                "protocol: expected one of %s, found %r" % ("|".join(PROTOCOLS), self.protocol)
            )
        if self.vlan not in VLAN_LAYOUTS:
            raise ValueError(
                "vlan: expected one of %s, found %r" % ("|".join(VLAN_LAYOUTS), self.vlan)
            )
        for name in ("subscriber_base", "server_base"):
            try:
                _ipv4(getattr(self, name))
            except ValueError:
                raise ValueError(
                    "%s: expected an IPv4 address, found %r" % (name, getattr(self, name))
                ) from None
        if not 1 <= self.server_count <= 0xFFFFFFFF:
            raise ValueError(
                "server_count: expected 1..4294967295, found %d" % self.server_count
            )
        for name in ("gateway_mac", "core_mac", "next_hop_mac"):
            try:
                _mac(getattr(self, name))
            except ValueError as err:
                raise ValueError("%s: %s" % (name, err)) from None
        object.__setattr__(self, "size", parse_size(self.size))
        if self.packets_per_session is not None and self.packets_per_session < 1:
            raise ValueError(
                "packets_per_session: expected at least 1, found %d" % self.packets_per_session
            )
        if self.vlan == "qinq":
            last_outer = OUTER_VID_BASE + (self.sessions - 1) // VLAN_MODULUS
            if last_outer > 4094:
                raise ValueError(
                    "sessions: qinq gives subscriber %d outer VID %d, above 4094; "
                    "use at most %d sessions"
                    % (self.sessions - 1, last_outer, (4094 - OUTER_VID_BASE + 1) * VLAN_MODULUS)
                )

    @property
    def effective_packets_per_session(self) -> int:
        """Frames per session in a pcap (the default resolved)."""
        if self.packets_per_session is not None:
            return self.packets_per_session
        return len(IMIX_PATTERN) if self.size == "imix" else 1

    def size_of_packet(self, k: int) -> int:
        """Wire size of packet ``k`` of every session."""
        if self.size == "imix":
            return IMIX_PATTERN[k % len(IMIX_PATTERN)]
        return self.size


# --- per-subscriber fields ---------------------------------------------------


def subscriber_mac(i: int) -> str:
    """MAC of subscriber ``i``: ``02:10`` then ``i`` as four big-endian bytes."""
    return _mac_str(subscriber_mac_bytes(i))


def subscriber_mac_bytes(i: int) -> bytes:
    """``subscriber_mac(i)`` as six bytes."""
    return b"\x02\x10" + struct.pack("!I", i & 0xFFFFFFFF)


def subscriber_ip(i: int, base: str = DEFAULT_SUBSCRIBER_BASE) -> str:
    """IPv4 address of subscriber ``i``: ``base + i`` (wrapping at 2**32)."""
    return str(ipaddress.IPv4Address(subscriber_ip_int(i, base)))


def subscriber_ip_int(i: int, base: str = DEFAULT_SUBSCRIBER_BASE) -> int:
    """``subscriber_ip(i, base)`` as an integer."""
    return (_ipv4(base) + i) & 0xFFFFFFFF


def server_ip(i: int, base: str = DEFAULT_SERVER_BASE, count: int = DEFAULT_SERVER_COUNT) -> str:
    """IPv4 address of the server subscriber ``i`` talks to."""
    return str(ipaddress.IPv4Address(server_ip_int(i, base, count)))


def server_ip_int(
    i: int, base: str = DEFAULT_SERVER_BASE, count: int = DEFAULT_SERVER_COUNT
) -> int:
    """``server_ip(i, base, count)`` as an integer."""
    return (_ipv4(base) + i % count) & 0xFFFFFFFF


def subscriber_port(i: int) -> int:
    """UDP port of subscriber ``i``: ``10000 + i % 50000``."""
    return SUBSCRIBER_PORT_BASE + i % SUBSCRIBER_PORT_MODULUS


def pppoe_session_id(i: int) -> int:
    """PPPoE session id of subscriber ``i``: ``1 + i % 65535`` (never 0)."""
    return 1 + i % PPPOE_SESSION_MODULUS


def vlan_ids(vlan: str, i: int) -> Tuple[int, ...]:
    """VLAN IDs of subscriber ``i``, outermost first: ``()``, ``(c,)`` or ``(s, c)``."""
    inner = INNER_VID_BASE + i % VLAN_MODULUS
    if vlan == "none":
        return ()
    if vlan == "single":
        return (inner,)
    if vlan == "qinq":
        return (OUTER_VID_BASE + i // VLAN_MODULUS, inner)
    raise ValueError("vlan: expected one of %s, found %r" % ("|".join(VLAN_LAYOUTS), vlan))


def access_key(params: Params, i: int) -> dict:
    """The session key the user plane installs for subscriber ``i``.

    ``svlan``/``cvlan`` follow the harness convention: single-tagged frames
    have ``svlan`` 0 and the tag as ``cvlan``; untagged frames have both 0.
    """
    tags = vlan_ids(params.vlan, i)
    svlan, cvlan = (0, 0) if not tags else ((0, tags[0]) if len(tags) == 1 else tags)
    return {
        "port": 0,
        "svlan": svlan,
        "cvlan": cvlan,
        "mac": subscriber_mac(i),
        "pppoe_session": pppoe_session_id(i) if params.protocol == "pppoe" else 0,
        "ipv4": subscriber_ip(i, params.subscriber_base),
    }


# --- layout ------------------------------------------------------------------


def l2_header_len(params: Params, direction: str) -> int:
    """Bytes before the IPv4 header (Ethernet, tags, PPPoE and PPP)."""
    if direction == "down":
        return ETHER_LEN
    check_direction(direction)
    tags = len(vlan_ids(params.vlan, 0))
    pppoe = PPPOE_LEN + PPP_LEN if params.protocol == "pppoe" else 0
    return ETHER_LEN + TAG_LEN * tags + pppoe


def payload_len(params: Params, direction: str, size: int) -> int:
    """Zero bytes after the UDP header in a frame of wire size ``size``."""
    headers = l2_header_len(params, direction) + IPV4_LEN + UDP_LEN
    return max(0, size - FCS_LEN - headers)


def frame_len(params: Params, direction: str, size: int) -> int:
    """Length of the built frame (no FCS): ``size - 4`` unless headers exceed it."""
    return l2_header_len(params, direction) + IPV4_LEN + UDP_LEN + payload_len(
        params, direction, size
    )


def check_direction(direction: str) -> None:
    """Raise ``ValueError`` unless ``direction`` is ``up`` or ``down``."""
    if direction not in DIRECTIONS:
        raise ValueError(
            "direction: expected one of %s, found %r" % ("|".join(DIRECTIONS), direction)
        )


def _check_index(params: Params, i: int) -> None:
    if not 0 <= i < params.sessions:
        raise IndexError("subscriber %d out of range 0..%d" % (i, params.sessions - 1))


# --- scapy builders (reference) ----------------------------------------------


def _ip_udp(src: int, dst: int, sport: int, dport: int, payload: int) -> Packet:
    l4 = UDP(sport=sport, dport=dport)
    if payload:
        l4 = l4 / Raw(load=bytes(payload))
    return (
        IP(
            src=str(ipaddress.IPv4Address(src)),
            dst=str(ipaddress.IPv4Address(dst)),
            tos=0,
            id=IPV4_ID,
            flags=0,
            frag=0,
            ttl=IPV4_TTL,
            proto=IPPROTO_UDP,
        )
        / l4
    )


def upstream_frame(params: Params, i: int, size: int) -> Packet:
    """Upstream frame of subscriber ``i`` as a scapy packet of wire size ``size``."""
    _check_index(params, i)
    size = parse_size(size)
    if size == "imix":
        raise ValueError("size: a single frame needs a number, not 'imix'")
    tags = vlan_ids(params.vlan, i)
    pppoe = params.protocol == "pppoe"
    inner_type = ETHERTYPE_PPPOE_SESSION if pppoe else ETHERTYPE_IPV4
    pkt = Ether(
        dst=params.gateway_mac,
        src=subscriber_mac(i),
        type=ETHERTYPE_VLAN if tags else inner_type,
    )
    for n, vid in enumerate(tags):
        last = n == len(tags) - 1
        pkt = pkt / Dot1Q(vlan=vid, type=inner_type if last else ETHERTYPE_VLAN)
    ip_udp = _ip_udp(
        subscriber_ip_int(i, params.subscriber_base),
        server_ip_int(i, params.server_base, params.server_count),
        subscriber_port(i),
        SERVER_PORT,
        payload_len(params, "up", size),
    )
    if pppoe:
        ip_len = IPV4_LEN + UDP_LEN + payload_len(params, "up", size)
        pkt = pkt / PPPoE(
            version=1, type=1, code=0, sessionid=pppoe_session_id(i), len=ip_len + PPP_LEN
        )
        pkt = pkt / PPPProtocol(proto=PPP_IPV4)
    return pkt / ip_udp


def downstream_frame(params: Params, i: int, size: int) -> Packet:
    """Downstream frame to subscriber ``i`` as a scapy packet of wire size ``size``."""
    _check_index(params, i)
    size = parse_size(size)
    if size == "imix":
        raise ValueError("size: a single frame needs a number, not 'imix'")
    pkt = Ether(dst=params.core_mac, src=params.next_hop_mac, type=ETHERTYPE_IPV4)
    return pkt / _ip_udp(
        server_ip_int(i, params.server_base, params.server_count),
        subscriber_ip_int(i, params.subscriber_base),
        SERVER_PORT,
        subscriber_port(i),
        payload_len(params, "down", size),
    )


def frame(params: Params, direction: str, i: int, size: int) -> Packet:
    """``upstream_frame`` or ``downstream_frame`` by direction."""
    check_direction(direction)
    if direction == "up":
        return upstream_frame(params, i, size)
    return downstream_frame(params, i, size)


def frames(params: Params, direction: str) -> Iterator[Packet]:
    """Every frame of a pcap, as scapy packets, in pcap order.

    Order: for ``k`` in packets per session, for ``i`` in sessions:
    frame ``(i, k)``, where ``k`` picks the size (see ``Params.size_of_packet``).
    """
    check_direction(direction)
    for k in range(params.effective_packets_per_session):
        size = params.size_of_packet(k)
        for i in range(params.sessions):
            yield frame(params, direction, i, size)


# --- fast byte builders --------------------------------------------------------


def _fold(total: int) -> int:
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ipv4_checksum(total_len: int, src: int, dst: int) -> int:
    """Header checksum of the scheme's IPv4 header (RFC 791, RFC 1071)."""
    total = (
        0x4500
        + total_len
        + IPV4_ID
        + 0  # flags and fragment offset
        + ((IPV4_TTL << 8) | IPPROTO_UDP)
        + (src >> 16)
        + (src & 0xFFFF)
        + (dst >> 16)
        + (dst & 0xFFFF)
    )
    return ~_fold(total) & 0xFFFF


def udp_checksum(src: int, dst: int, sport: int, dport: int, udp_len: int) -> int:
    """UDP checksum over the pseudo header and a zero payload (RFC 768).

    A computed 0 is sent as 0xffff, since 0 means "no checksum".
    """
    total = (
        (src >> 16)
        + (src & 0xFFFF)
        + (dst >> 16)
        + (dst & 0xFFFF)
        + IPPROTO_UDP
        + udp_len
        + sport
        + dport
        + udp_len
    )
    csum = ~_fold(total) & 0xFFFF
    return csum or 0xFFFF


_IP_UDP = struct.Struct("!BBHHHBBHIIHHHH")


@functools.lru_cache(maxsize=32)
def _resolved(params: Params) -> tuple:
    """Parsed addresses of ``params``: (gateway, core, next hop MACs, bases)."""
    return (
        _mac(params.gateway_mac),
        _mac(params.core_mac),
        _mac(params.next_hop_mac),
        _ipv4(params.subscriber_base),
        _ipv4(params.server_base),
    )


def _ip_udp_bytes(src: int, dst: int, sport: int, dport: int, payload: int) -> bytes:
    udp_len = UDP_LEN + payload
    total_len = IPV4_LEN + udp_len
    return _IP_UDP.pack(
        0x45,
        0,
        total_len,
        IPV4_ID,
        0,
        IPV4_TTL,
        IPPROTO_UDP,
        ipv4_checksum(total_len, src, dst),
        src,
        dst,
        sport,
        dport,
        udp_len,
        udp_checksum(src, dst, sport, dport, udp_len),
    ) + bytes(payload)


def upstream_bytes(params: Params, i: int, size: int) -> bytes:
    """``bytes(upstream_frame(params, i, size))`` without scapy."""
    _check_index(params, i)
    gateway, _, _, sub_base, srv_base = _resolved(params)
    tags = vlan_ids(params.vlan, i)
    pppoe = params.protocol == "pppoe"
    inner_type = ETHERTYPE_PPPOE_SESSION if pppoe else ETHERTYPE_IPV4
    payload = payload_len(params, "up", size)
    out = [
        gateway,
        subscriber_mac_bytes(i),
        struct.pack("!H", ETHERTYPE_VLAN if tags else inner_type),
    ]
    for n, vid in enumerate(tags):
        last = n == len(tags) - 1
        out.append(struct.pack("!HH", vid & 0x0FFF, inner_type if last else ETHERTYPE_VLAN))
    if pppoe:
        ip_len = IPV4_LEN + UDP_LEN + payload
        out.append(struct.pack("!BBHHH", 0x11, 0, pppoe_session_id(i), ip_len + PPP_LEN, PPP_IPV4))
    out.append(
        _ip_udp_bytes(
            (sub_base + i) & 0xFFFFFFFF,
            (srv_base + i % params.server_count) & 0xFFFFFFFF,
            subscriber_port(i),
            SERVER_PORT,
            payload,
        )
    )
    return b"".join(out)


def downstream_bytes(params: Params, i: int, size: int) -> bytes:
    """``bytes(downstream_frame(params, i, size))`` without scapy."""
    _check_index(params, i)
    _, core, next_hop, sub_base, srv_base = _resolved(params)
    return (
        core
        + next_hop
        + b"\x08\x00"
        + _ip_udp_bytes(
            (srv_base + i % params.server_count) & 0xFFFFFFFF,
            (sub_base + i) & 0xFFFFFFFF,
            SERVER_PORT,
            subscriber_port(i),
            payload_len(params, "down", size),
        )
    )


def frame_bytes(params: Params, direction: str, i: int, size: int) -> bytes:
    """``upstream_bytes`` or ``downstream_bytes`` by direction."""
    check_direction(direction)
    if direction == "up":
        return upstream_bytes(params, i, size)
    return downstream_bytes(params, i, size)


def frames_bytes(params: Params, direction: str) -> Iterator[bytes]:
    """Every frame of a pcap, as bytes, in the order of ``frames``."""
    check_direction(direction)
    build = upstream_bytes if direction == "up" else downstream_bytes
    for k in range(params.effective_packets_per_session):
        size = params.size_of_packet(k)
        for i in range(params.sessions):
            yield build(params, i, size)
