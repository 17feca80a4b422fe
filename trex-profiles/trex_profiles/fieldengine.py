"""Cover N sessions with few TRex field-engine programs (pure, no TRex).

TRex's field engine steps a variable once per packet and writes it into the
packet with a constant added (``STLVmWrFlowVar`` ``add_val``,
``STLVmWrMaskFlowVar`` ``add_value``).  It has no modulo, no division and
no multiplication, and two variables stepping side by side only stay in
step when their ranges have the same length.  So one variable, the
subscriber index ``i``, drives every field, and each field must be
``i + constant`` over the stream's index range.

Per subscriber, the scheme's fields are:

=================  ==========================  =======================
field              value                       affine in ``i`` within
=================  ==========================  =======================
source MAC (low 4) ``i``                       everywhere
subscriber IPv4    ``base + i``                everywhere (mod 2**32)
server IPv4        ``base + i % server_count`` a block of server_count
UDP port           ``10000 + i % 50000``       a block of 50000
inner VID          ``1 + i % 4000``            a block of 4000
outer VID (QinQ)   ``100 + i // 4000``         constant in a block of 4000
PPPoE session id   ``1 + i % 65535``           a block of 65535
=================  ==========================  =======================

``segments`` therefore cuts ``0..N`` at every multiple of each modulus in
use (a modulus of 1 makes its field a constant and cuts nothing), and
gives, per segment, the writes that turn the segment's first frame into the
frame of any index in it.  Fields constant in a segment (the QinQ outer
VID, the PPPoE length, MACs of the gateway) stay as built in the first
frame.  After the writes the IPv4 and UDP checksums must be recomputed
(``STLVmFixChecksumHw``).
"""

from dataclasses import dataclass
from typing import Callable, List, Tuple

from . import scheme
from .scheme import Params

#: Offset of the four low bytes of the source MAC.
SRC_MAC_LOW = 8


@dataclass(frozen=True)
class Write:
    """Write ``(i + add) & mask`` big-endian into ``width`` bytes at ``offset``.

    ``width`` 4 is a plain ``STLVmWrFlowVar`` of the 4-byte index variable
    (``add`` given as a signed 32-bit value); ``width`` 2 is an
    ``STLVmWrMaskFlowVar`` with ``pkt_cast_size`` 2 (``add`` in 0..65535),
    which keeps the bits outside ``mask`` (the PCP and DEI of a VLAN tag).
    """

    name: str
    offset: int
    width: int
    mask: int
    add: int

    def apply(self, frame: bytearray, i: int) -> None:
        """Do what the field engine does to ``frame`` for index ``i``."""
        end = self.offset + self.width
        old = int.from_bytes(frame[self.offset : end], "big")
        value = (i + self.add) & self.mask
        frame[self.offset : end] = ((old & ~self.mask) | value).to_bytes(self.width, "big")


@dataclass(frozen=True)
class Segment:
    """Indices ``first .. first + count - 1`` covered by one stream."""

    first: int
    count: int
    writes: Tuple[Write, ...]

    @property
    def last(self) -> int:
        """The last index of the segment."""
        return self.first + self.count - 1


@dataclass(frozen=True)
class Layout:
    """Byte offsets of the IPv4 and UDP headers in a frame."""

    l3: int
    l4: int


def layout(params: Params, direction: str) -> Layout:
    """Offsets of the IPv4 and UDP headers for ``direction``."""
    l3 = scheme.l2_header_len(params, direction)
    return Layout(l3=l3, l4=l3 + scheme.IPV4_LEN)


class _Field:
    def __init__(self, name: str, offset: int, width: int, mask: int, modulus: int,
                 value: Callable[[int], int]) -> None:
        self.name = name
        self.offset = offset
        self.width = width
        self.mask = mask
        self.modulus = modulus  # 0: affine everywhere; 1: constant
        self.value = value


def _fields(params: Params, direction: str) -> List[_Field]:
    lay = layout(params, direction)
    sub = lambda i: scheme.subscriber_ip_int(i, params.subscriber_base)  # noqa: E731
    srv = lambda i: scheme.server_ip_int(i, params.server_base, params.server_count)  # noqa: E731
    sc = params.server_count
    fields = []
    if direction == "up":
        fields.append(_Field("src_mac", SRC_MAC_LOW, 4, 0xFFFFFFFF, 0, lambda i: i))
        ntags = len(scheme.vlan_ids(params.vlan, 0))
        if ntags:
            # the inner (or only) tag's TCI; the QinQ outer tag is constant per segment
            tci = scheme.ETHER_LEN + scheme.TAG_LEN * (ntags - 1)
            fields.append(
                _Field("vlan", tci, 2, 0x0FFF, scheme.VLAN_MODULUS,
                       lambda i: scheme.vlan_ids(params.vlan, i)[-1])
            )
        if params.protocol == "pppoe":
            sid = scheme.ETHER_LEN + scheme.TAG_LEN * ntags + 2
            fields.append(
                _Field("pppoe_session", sid, 2, 0xFFFF, scheme.PPPOE_SESSION_MODULUS,
                       scheme.pppoe_session_id)
            )
        fields.append(_Field("ip_src", lay.l3 + 12, 4, 0xFFFFFFFF, 0, sub))
        fields.append(_Field("ip_dst", lay.l3 + 16, 4, 0xFFFFFFFF, sc, srv))
        fields.append(
            _Field("udp_sport", lay.l4, 2, 0xFFFF, scheme.SUBSCRIBER_PORT_MODULUS,
                   scheme.subscriber_port)
        )
    else:
        scheme.check_direction(direction)
        fields.append(_Field("ip_src", lay.l3 + 12, 4, 0xFFFFFFFF, sc, srv))
        fields.append(_Field("ip_dst", lay.l3 + 16, 4, 0xFFFFFFFF, 0, sub))
        fields.append(
            _Field("udp_dport", lay.l4 + 2, 2, 0xFFFF, scheme.SUBSCRIBER_PORT_MODULUS,
                   scheme.subscriber_port)
        )
    return fields


def boundaries(params: Params, direction: str) -> List[int]:
    """Sorted segment starts: 0 and every multiple of a modulus in use below N."""
    moduli = {f.modulus for f in _fields(params, direction) if f.modulus > 1}
    if params.vlan == "qinq" and direction == "up":
        moduli.add(scheme.VLAN_MODULUS)  # the outer VID steps every 4000
    starts = {0}
    for m in moduli:
        starts.update(range(m, params.sessions, m))
    return sorted(starts)


def segments(params: Params, direction: str) -> List[Segment]:
    """The index ranges and their writes that together cover all sessions."""
    fields = _fields(params, direction)
    starts = boundaries(params, direction)
    out = []
    for n, first in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else params.sessions
        writes = []
        for f in fields:
            if f.modulus == 1:
                continue  # constant: stays as built in the first frame
            bits = 8 * f.width
            add = (f.value(first) - first) % (1 << bits)
            if f.width == 4 and add >= 1 << 31:
                add -= 1 << 32  # signed: TRex keeps add_val in an int32
            writes.append(Write(f.name, f.offset, f.width, f.mask, add))
        out.append(Segment(first=first, count=end - first, writes=tuple(writes)))
    return out


def apply(params: Params, direction: str, segment: Segment, i: int, size: int) -> bytes:
    """Frame ``i`` as the field engine makes it from the segment's first frame.

    Runs the segment's writes, then recomputes the IPv4 header and UDP
    checksums as ``STLVmFixChecksumHw`` does.  Used by the tests to check
    that the programs TRex runs produce exactly the scheme's frames.
    """
    if not segment.first <= i <= segment.last:
        raise IndexError("index %d outside segment %d..%d" % (i, segment.first, segment.last))
    buf = bytearray(scheme.frame_bytes(params, direction, segment.first, size))
    for w in segment.writes:
        w.apply(buf, i)
    fix_checksums(buf, layout(params, direction))
    return bytes(buf)


def fix_checksums(buf: bytearray, lay: Layout) -> None:
    """Recompute the IPv4 header and UDP checksums of ``buf`` in place."""
    l3, l4 = lay.l3, lay.l4
    buf[l3 + 10 : l3 + 12] = b"\x00\x00"
    buf[l4 + 6 : l4 + 8] = b"\x00\x00"
    ip_sum = _sum16(buf[l3:l4])
    buf[l3 + 10 : l3 + 12] = (~ip_sum & 0xFFFF).to_bytes(2, "big")
    udp_len = int.from_bytes(buf[l4 + 4 : l4 + 6], "big")
    pseudo = (
        bytes(buf[l3 + 12 : l3 + 20])
        + bytes([0, scheme.IPPROTO_UDP])
        + udp_len.to_bytes(2, "big")
    )
    udp_sum = ~_sum16(pseudo + bytes(buf[l4 : l4 + udp_len])) & 0xFFFF
    buf[l4 + 6 : l4 + 8] = (udp_sum or 0xFFFF).to_bytes(2, "big")


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = sum(int.from_bytes(data[n : n + 2], "big") for n in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total
