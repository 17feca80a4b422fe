"""A stand-in for TRex's ``trex_stl_lib.api``, for the tests only.

It records what a profile builds (streams, packets, field-engine programs)
and checks arguments the way TRex's client does where it matters (variable
sizes and ranges, cast sizes, masks), so a profile that would be refused
by TRex fails here too.  ``run_vm`` executes a recorded program the way
TRex's field engine does, to compare its output with the scheme.
"""

import sys
import types

_MODULES = ("trex_stl_lib", "trex_stl_lib.api")


STLStreamDstMAC_CFG_FILE = 0
STLStreamDstMAC_PKT = 1
STLStreamDstMAC_ARP = 2


class CTRexVmInsFixHwCs(object):
    L4_TYPE_UDP = 11
    L4_TYPE_TCP = 13
    L4_TYPE_IP = 17


class STLVmFlowVar(object):
    def __init__(self, name, init_value=None, min_value=0, max_value=255, size=4, step=1,
                 op="inc"):
        assert isinstance(name, str)
        assert size in (1, 2, 4, 8), "flow var size %r" % size
        assert op in ("inc", "dec", "random"), "flow var op %r" % op
        assert 0 <= min_value <= max_value < 1 << (8 * size), (min_value, max_value, size)
        assert step > 0
        self.name, self.size, self.op, self.step = name, size, op, step
        self.min_value, self.max_value = min_value, max_value
        self.init_value = min_value if init_value is None else init_value


class STLVmWrFlowVar(object):
    def __init__(self, fv_name, pkt_offset, offset_fixup=0, add_val=0, is_big=True):
        assert isinstance(pkt_offset, int) and isinstance(add_val, int)
        assert -(1 << 31) <= add_val < 1 << 31, "add_val %d outside int32" % add_val
        self.fv_name, self.pkt_offset, self.offset_fixup = fv_name, pkt_offset, offset_fixup
        self.add_val, self.is_big = add_val, is_big


class STLVmWrMaskFlowVar(object):
    def __init__(self, fv_name, pkt_offset, pkt_cast_size=1, mask=0xFF, shift=0, add_value=0,
                 offset_fixup=0, is_big=True):
        assert pkt_cast_size in (1, 2, 4), "cast size %r" % pkt_cast_size
        assert 0 < mask < 1 << (8 * pkt_cast_size)
        assert isinstance(add_value, int)
        self.fv_name, self.pkt_offset, self.pkt_cast_size = fv_name, pkt_offset, pkt_cast_size
        self.mask, self.shift, self.add_value = mask, shift, add_value
        self.offset_fixup, self.is_big = offset_fixup, is_big


class STLVmFixChecksumHw(object):
    def __init__(self, l3_offset, l4_offset, l4_type):
        self.l3_offset, self.l4_offset, self.l4_type = l3_offset, l4_offset, l4_type


class STLVmFixIpv4(object):
    def __init__(self, offset):
        self.offset = offset


class STLScVmRaw(object):
    def __init__(self, list_of_commands=None, cache_size=None):
        self.commands = list(list_of_commands or [])
        self.cache_size = cache_size


class STLPktBuilder(object):
    def __init__(self, pkt=None, pkt_buffer=None, vm=None, path_relative_to_profile=False,
                 build_raw=False, remove_fcs=True):
        assert pkt is not None or pkt_buffer is not None
        self.pkt = pkt
        self.raw = bytes(pkt) if pkt is not None else bytes(pkt_buffer)
        self.vm = vm


class STLTXCont(object):
    def __init__(self, bps_L1=None, bps_L2=None, pps=None, percentage=None):
        assert pps is not None and pps > 0
        self.pps = pps


class STLStream(object):
    def __init__(self, name=None, packet=None, mode=None, enabled=True, self_start=True,
                 isg=0, flow_stats=None, next=None, stream_id=None, action_count=0,
                 random_seed=0, mac_src_override_by_pkt=None, mac_dst_override_mode=None,
                 dummy_stream=False, start_paused=False, core_id=-1):
        assert packet is not None and mode is not None
        self.name, self.packet, self.mode = name, packet, mode
        self.mac_src_override_by_pkt = mac_src_override_by_pkt
        self.mac_dst_override_mode = mac_dst_override_mode


def install():
    """Put the stub in ``sys.modules`` as ``trex_stl_lib.api``; returns it."""
    pkg = types.ModuleType("trex_stl_lib")
    pkg.__path__ = []
    api = types.ModuleType("trex_stl_lib.api")
    for obj in (CTRexVmInsFixHwCs, STLVmFlowVar, STLVmWrFlowVar, STLVmWrMaskFlowVar,
                STLVmFixChecksumHw, STLVmFixIpv4, STLScVmRaw, STLPktBuilder, STLTXCont,
                STLStream):
        setattr(api, obj.__name__, obj)
    api.STLStreamDstMAC_PKT = STLStreamDstMAC_PKT
    pkg.api = api
    sys.modules["trex_stl_lib"] = pkg
    sys.modules["trex_stl_lib.api"] = api
    return api


def uninstall():
    """Remove the stub from ``sys.modules``."""
    for name in _MODULES:
        sys.modules.pop(name, None)


def _sum16(data):
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = 0
    for n in range(0, len(data), 2):
        total += (data[n] << 8) | data[n + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def layer_offset(pkt, where):
    """Offset of a layer given as TRex does: a number, or a scapy layer name."""
    if isinstance(where, int):
        return where
    total = len(bytes(pkt))
    layer = pkt
    while layer is not None and layer.name != where and type(layer).__name__ != where:
        layer = layer.payload if layer.payload else None
    assert layer is not None, "no layer %r in the packet" % where
    return total - len(bytes(layer))


def run_vm(stream, value):
    """The frame ``stream`` sends when its (single) variable holds ``value``."""
    buf = bytearray(stream.packet.raw)
    vm = stream.packet.vm
    if vm is None:
        return bytes(buf)
    var = vm.commands[0]
    assert isinstance(var, STLVmFlowVar)
    assert var.min_value <= value <= var.max_value
    for cmd in vm.commands[1:]:
        if isinstance(cmd, STLVmWrFlowVar):
            assert cmd.fv_name == var.name
            off = cmd.pkt_offset + cmd.offset_fixup
            v = (value + cmd.add_val) % (1 << (8 * var.size))
            buf[off:off + var.size] = v.to_bytes(var.size, "big")
        elif isinstance(cmd, STLVmWrMaskFlowVar):
            assert cmd.fv_name == var.name and cmd.shift == 0
            off = cmd.pkt_offset + cmd.offset_fixup
            n = cmd.pkt_cast_size
            old = int.from_bytes(buf[off:off + n], "big")
            v = (value + cmd.add_value) & ((1 << (8 * n)) - 1)
            buf[off:off + n] = ((old & ~cmd.mask) | (v & cmd.mask)).to_bytes(n, "big")
        elif isinstance(cmd, STLVmFixChecksumHw):
            assert cmd.l4_type == CTRexVmInsFixHwCs.L4_TYPE_UDP
            l3 = layer_offset(stream.packet.pkt, cmd.l3_offset)
            l4 = layer_offset(stream.packet.pkt, cmd.l4_offset)
            buf[l3 + 10:l3 + 12] = b"\x00\x00"
            buf[l3 + 10:l3 + 12] = (0xFFFF ^ _sum16(buf[l3:l4])).to_bytes(2, "big")
            udp_len = int.from_bytes(buf[l4 + 4:l4 + 6], "big")
            buf[l4 + 6:l4 + 8] = b"\x00\x00"
            pseudo = bytes(buf[l3 + 12:l3 + 20]) + b"\x00\x11" + udp_len.to_bytes(2, "big")
            csum = 0xFFFF ^ _sum16(pseudo + bytes(buf[l4:l4 + udp_len]))
            buf[l4 + 6:l4 + 8] = (csum or 0xFFFF).to_bytes(2, "big")
        else:
            raise AssertionError("unexpected field-engine command %r" % cmd)
    return bytes(buf)
