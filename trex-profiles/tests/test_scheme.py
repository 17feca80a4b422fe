"""Tests of the vbng-lab scheme, the pcap writer and the TRex profiles.

Run: cd trex-profiles && /usr/bin/python3 -m unittest discover -s tests -v
"""

import contextlib
import importlib.util
import io
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import Dot1Q, Ether  # noqa: E402
from scapy.layers.ppp import PPP, PPPoE  # noqa: E402
from scapy.utils import rdpcap  # noqa: E402

import trex_stub  # noqa: E402
from trex_profiles import check_pcap, fieldengine, scheme, stl, to_pcap  # noqa: E402
from trex_profiles.pcap import PcapFileWriter  # noqa: E402
from trex_profiles.scheme import Params  # noqa: E402

LAYOUTS = list(itertools.product(scheme.PROTOCOLS, scheme.VLAN_LAYOUTS))
SIZES = (64, 65, 128, 594, 1518)
# indices on both sides of every modulus of the scheme
EDGES = (0, 1, 253, 254, 255, 3999, 4000, 4001, 49999, 50000, 65534, 65535, 65536, 69999)


def reference_checksums(raw_ip):
    """IPv4 and UDP checksums scapy computes for an IPv4 packet's bytes."""
    ip = IP(raw_ip)
    del ip.chksum
    del ip[UDP].chksum
    rebuilt = IP(bytes(ip))
    return rebuilt.chksum, rebuilt[UDP].chksum


class FieldsTest(unittest.TestCase):
    def test_subscriber_mac(self):
        self.assertEqual(scheme.subscriber_mac(0), "02:10:00:00:00:00")
        self.assertEqual(scheme.subscriber_mac(0x01020304), "02:10:01:02:03:04")
        self.assertEqual(scheme.subscriber_mac(255), "02:10:00:00:00:ff")

    def test_subscriber_ip_is_base_plus_index_wrapping(self):
        self.assertEqual(scheme.subscriber_ip(0), "100.64.0.1")
        self.assertEqual(scheme.subscriber_ip(255), "100.64.1.0")
        self.assertEqual(scheme.subscriber_ip(99999), "100.65.134.160")
        self.assertEqual(scheme.subscriber_ip(1, "255.255.255.255"), "0.0.0.0")

    def test_server_ip_cycles_over_server_count(self):
        self.assertEqual(scheme.server_ip(0), "203.0.113.1")
        self.assertEqual(scheme.server_ip(253), "203.0.113.254")
        self.assertEqual(scheme.server_ip(254), "203.0.113.1")
        self.assertEqual(scheme.server_ip(7, count=5), "203.0.113.3")

    def test_vlans(self):
        self.assertEqual(scheme.vlan_ids("none", 5), ())
        self.assertEqual(scheme.vlan_ids("single", 0), (1,))
        self.assertEqual(scheme.vlan_ids("single", 3999), (4000,))
        self.assertEqual(scheme.vlan_ids("single", 4000), (1,))
        self.assertEqual(scheme.vlan_ids("qinq", 0), (100, 1))
        self.assertEqual(scheme.vlan_ids("qinq", 4000), (101, 1))
        self.assertEqual(scheme.vlan_ids("qinq", 12345), (103, 346))

    def test_pppoe_session_and_port(self):
        self.assertEqual(scheme.pppoe_session_id(0), 1)
        self.assertEqual(scheme.pppoe_session_id(65534), 65535)
        self.assertEqual(scheme.pppoe_session_id(65535), 1)
        self.assertEqual(scheme.subscriber_port(0), 10000)
        self.assertEqual(scheme.subscriber_port(49999), 59999)
        self.assertEqual(scheme.subscriber_port(50000), 10000)

    def test_access_key(self):
        self.assertEqual(
            scheme.access_key(Params(protocol="pppoe", vlan="single"), 4),
            {"port": 0, "svlan": 0, "cvlan": 5, "mac": "02:10:00:00:00:04",
             "pppoe_session": 5, "ipv4": "100.64.0.5"},
        )
        key = scheme.access_key(Params(sessions=5000, vlan="qinq"), 4001)
        self.assertEqual((key["svlan"], key["cvlan"], key["pppoe_session"]), (101, 2, 0))

    def test_bad_parameters_are_one_line_errors(self):
        for kwargs, word in (
            ({"protocol": "l2tp"}, "protocol"),
            ({"vlan": "triple"}, "vlan"),
            ({"size": 60}, "size"),
            ({"size": "jumbo"}, "size"),
            ({"sessions": 0}, "sessions"),
            ({"gateway_mac": "02:00"}, "gateway_mac"),
            ({"server_base": "300.1.1.1"}, "server_base"),
            ({"vlan": "qinq", "sessions": 16_000_000}, "outer VID"),
        ):
            with self.assertRaises(ValueError) as ctx:
                Params(**kwargs)
            self.assertIn(word, str(ctx.exception))
            self.assertNotIn("\n", str(ctx.exception))


class FrameTest(unittest.TestCase):
    def test_frame_length_is_size_minus_fcs(self):
        for proto, vlan in LAYOUTS:
            p = Params(sessions=10, protocol=proto, vlan=vlan)
            for direction in scheme.DIRECTIONS:
                for size in SIZES:
                    with self.subTest(proto=proto, vlan=vlan, direction=direction, size=size):
                        self.assertEqual(len(scheme.frame(p, direction, 3, size)), size - 4)
                        self.assertEqual(len(scheme.frame_bytes(p, direction, 3, size)), size - 4)

    def test_smallest_frame_of_the_largest_headers_still_fits(self):
        p = Params(protocol="pppoe", vlan="qinq")
        self.assertEqual(scheme.l2_header_len(p, "up") + 28, 58)
        self.assertEqual(scheme.payload_len(p, "up", 64), 2)

    def test_fast_bytes_equal_scapy_bytes(self):
        for proto, vlan in LAYOUTS:
            p = Params(sessions=70000, protocol=proto, vlan=vlan, server_count=254)
            for direction, size, i in itertools.product(scheme.DIRECTIONS, (64, 1518), EDGES):
                with self.subTest(proto=proto, vlan=vlan, direction=direction, size=size, i=i):
                    self.assertEqual(
                        bytes(scheme.frame(p, direction, i, size)),
                        scheme.frame_bytes(p, direction, i, size),
                    )

    def test_golden_pppoe_qinq_upstream(self):
        # Subscriber 5, PPPoE over QinQ, 64 bytes: the fields laid out from the scheme's definition
        # (the two checksums are also recomputed by scapy in the test below).
        expected = bytes.fromhex(
            "02005e000101" "021000000005" "8100" "0064" "8100" "0006" "8864"
            "11" "00" "0006" "0020" "0021"
            "4500001e" "00010000" "4011" "da81" "64400006" "cb007106"
            "2715" "1451" "000a" "2427" "0000"
        )
        self.assertEqual(scheme.upstream_bytes(Params(protocol="pppoe", vlan="qinq"), 5, 64),
                         expected)

    def test_checksums_valid_by_scapy_redissection(self):
        for proto, vlan in LAYOUTS:
            p = Params(sessions=70000, protocol=proto, vlan=vlan)
            for direction, size, i in itertools.product(scheme.DIRECTIONS, SIZES, EDGES[::3]):
                raw = scheme.frame_bytes(p, direction, i, size)
                pkt = Ether(raw)
                with self.subTest(proto=proto, vlan=vlan, direction=direction, size=size, i=i):
                    self.assertIn(IP, pkt)
                    self.assertEqual(reference_checksums(bytes(pkt[IP])),
                                     (pkt[IP].chksum, pkt[UDP].chksum))

    def test_upstream_fields_per_index(self):
        for proto, vlan in LAYOUTS:
            p = Params(sessions=70000, protocol=proto, vlan=vlan)
            for i in EDGES:
                raw = scheme.upstream_bytes(p, i, 128)
                pkt = Ether(raw)
                with self.subTest(proto=proto, vlan=vlan, i=i):
                    self.assertEqual(pkt.dst, "02:00:5e:00:01:01")
                    self.assertEqual(pkt.src, scheme.subscriber_mac(i))
                    tags = [(t.vlan, t.prio, t.id) for t in self._tags(pkt)]
                    self.assertEqual(tags, [(v, 0, 0) for v in scheme.vlan_ids(vlan, i)])
                    ip, udp = pkt[IP], pkt[UDP]
                    self.assertEqual((ip.src, ip.dst), (scheme.subscriber_ip(i),
                                                        scheme.server_ip(i)))
                    self.assertEqual((ip.ttl, ip.id, int(ip.flags), ip.frag, ip.tos),
                                     (64, 1, 0, 0, 0))
                    self.assertEqual((udp.sport, udp.dport), (scheme.subscriber_port(i), 5201))
                    self.assertEqual(bytes(udp.payload), bytes(len(udp.payload)))
                    self.assertEqual(udp.len, 8 + len(udp.payload))
                    if proto == "pppoe":
                        self.assertEqual(pkt[PPPoE].sessionid, scheme.pppoe_session_id(i))
                    else:
                        self.assertNotIn(PPPoE, pkt)

    def test_downstream_fields_per_index(self):
        p = Params(sessions=70000, protocol="pppoe", vlan="qinq")
        for i in EDGES:
            pkt = Ether(scheme.downstream_bytes(p, i, 64))
            with self.subTest(i=i):
                self.assertEqual((pkt.dst, pkt.src, pkt.type),
                                 ("02:00:00:00:c0:01", "02:00:5e:00:02:01", 0x0800))
                self.assertEqual((pkt[IP].src, pkt[IP].dst),
                                 (scheme.server_ip(i), scheme.subscriber_ip(i)))
                self.assertEqual((pkt[UDP].sport, pkt[UDP].dport),
                                 (5201, scheme.subscriber_port(i)))
                self.assertEqual((pkt[IP].ttl, pkt[IP].id, int(pkt[IP].flags)), (64, 1, 0))

    def test_custom_addresses(self):
        p = Params(subscriber_base="10.0.0.0", server_base="192.0.2.10", server_count=3,
                   gateway_mac="aa:bb:cc:dd:ee:ff", core_mac="02:00:00:00:00:01",
                   next_hop_mac="02:00:00:00:00:02")
        up, down = Ether(scheme.upstream_bytes(p, 4, 64)), Ether(scheme.downstream_bytes(p, 4, 64))
        self.assertEqual((up.dst, up[IP].src, up[IP].dst),
                         ("aa:bb:cc:dd:ee:ff", "10.0.0.4", "192.0.2.11"))
        self.assertEqual((down.dst, down.src), ("02:00:00:00:00:01", "02:00:00:00:00:02"))

    @staticmethod
    def _tags(pkt):
        layer, out = pkt.payload, []
        while isinstance(layer, Dot1Q):
            out.append(layer)
            layer = layer.payload
        return out

    def test_vlan_layouts_on_the_wire(self):
        for proto, vlan in LAYOUTS:
            p = Params(sessions=5000, protocol=proto, vlan=vlan)
            raw = scheme.upstream_bytes(p, 4321, 64)
            inner = 0x8864 if proto == "pppoe" else 0x0800
            expected = {
                "none": [inner],
                "single": [0x8100, inner],
                "qinq": [0x8100, 0x8100, inner],
            }[vlan]
            types = [int.from_bytes(raw[12 + 4 * n:14 + 4 * n], "big")
                     for n in range(len(expected))]
            with self.subTest(proto=proto, vlan=vlan):
                self.assertEqual(types, expected)
                if vlan == "single":
                    self.assertEqual(raw[14:16], (1 + 4321 % 4000).to_bytes(2, "big"))
                if vlan == "qinq":
                    self.assertEqual(raw[14:16], (101).to_bytes(2, "big"))
                    self.assertEqual(raw[18:20], (322).to_bytes(2, "big"))

    def test_pppoe_header_and_length(self):
        for vlan in scheme.VLAN_LAYOUTS:
            p = Params(protocol="pppoe", vlan=vlan)
            for size in SIZES:
                raw = scheme.upstream_bytes(p, 7, size)
                off = scheme.l2_header_len(p, "up") - 8
                pkt = Ether(raw)
                with self.subTest(vlan=vlan, size=size):
                    self.assertEqual(raw[off], 0x11)  # version 1, type 1
                    self.assertEqual(raw[off + 1], 0)  # code: session data
                    self.assertEqual(raw[off + 2:off + 4], (8).to_bytes(2, "big"))
                    length = int.from_bytes(raw[off + 4:off + 6], "big")
                    self.assertEqual(length, pkt[IP].len + 2)
                    self.assertEqual(length, len(raw) - off - 6)
                    self.assertEqual(raw[off + 6:off + 8], b"\x00\x21")  # not compressed
                    self.assertEqual(pkt[PPP].proto, 0x0021)

    def test_pcap_order_and_imix_pattern(self):
        p = Params(sessions=3, size="imix")
        self.assertEqual(p.effective_packets_per_session, 12)
        frames = list(scheme.frames_bytes(p, "up"))
        self.assertEqual(len(frames), 36)
        pattern = [64] * 7 + [594] * 4 + [1518]
        for n, raw in enumerate(frames):
            k, i = divmod(n, 3)
            self.assertEqual(len(raw), pattern[k] - 4)
            self.assertEqual(raw[8:12], i.to_bytes(4, "big"))
        self.assertEqual([bytes(f) for f in scheme.frames(p, "up")], frames)
        q = Params(sessions=2, size=128, packets_per_session=3)
        self.assertEqual(len(list(scheme.frames_bytes(q, "down"))), 6)
        self.assertEqual(Params(size=64).effective_packets_per_session, 1)


class PcapTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="trex-profiles-")
        self.addCleanup(shutil.rmtree, self.dir)

    def test_to_pcap_writes_a_readable_pcap(self):
        for proto, vlan in LAYOUTS:
            for direction in scheme.DIRECTIONS:
                out = os.path.join(self.dir, "%s-%s-%s.pcap" % (proto, vlan, direction))
                status = to_pcap.main([
                    "--sessions", "300", "--protocol", proto, "--vlan", vlan, "--size", "imix",
                    "--direction", direction, "--out", out, "--packets-per-session", "13",
                    "--quiet",
                ])
                self.assertEqual(status, 0)
                p = Params(sessions=300, protocol=proto, vlan=vlan, size="imix",
                           packets_per_session=13)
                pkts = rdpcap(out)
                with self.subTest(proto=proto, vlan=vlan, direction=direction):
                    self.assertEqual(len(pkts), 300 * 13)
                    self.assertEqual([bytes(x) for x in pkts],
                                     list(scheme.frames_bytes(p, direction)))

    def test_scapy_builder_writes_the_same_file(self):
        a, b = os.path.join(self.dir, "a.pcap"), os.path.join(self.dir, "b.pcap")
        base = ["--sessions", "40", "--protocol", "pppoe", "--vlan", "single", "--quiet"]
        self.assertEqual(to_pcap.main(base + ["--out", a]), 0)
        self.assertEqual(to_pcap.main(base + ["--out", b, "--builder", "scapy"]), 0)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            self.assertEqual(fa.read(), fb.read())

    def test_check_pcap_accepts_scheme_frames_only(self):
        path = os.path.join(self.dir, "c.pcap")
        opts = ["--sessions", "300", "--protocol", "pppoe", "--vlan", "single", "--size", "imix"]
        self.assertEqual(to_pcap.main(opts + ["--out", path, "--quiet"]), 0)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(check_pcap.main([path] + opts), 0)
        self.assertIn("3600 frames, 300 of 300 sessions seen, 0 frames not in the scheme",
                      out.getvalue())
        # the same frames read as another layout are not scheme frames
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(check_pcap.main([path] + opts[:-3] + ["qinq", "--size", "imix"]), 1)
        # one frame with a wrong byte is reported by its number
        frames = list(scheme.frames_bytes(Params(sessions=300, protocol="pppoe", vlan="single",
                                                 size="imix"), "up"))
        frames[41] = frames[41][:-1] + b"\x01"
        with PcapFileWriter(path) as w:
            w.write_all(frames)
        count, seen, bad = check_pcap.check(
            path, Params(sessions=300, protocol="pppoe", vlan="single", size="imix"), "up")
        self.assertEqual((count, len(seen), bad), (3600, 300, [42]))

    def test_bad_option_is_one_line(self):
        out = os.path.join(self.dir, "x.pcap")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(to_pcap.main(["--sessions", "0", "--out", out, "--quiet"]), 2)
        self.assertEqual(err.getvalue(), "to_pcap: sessions: expected 1..4294967295, found 0\n")
        self.assertFalse(os.path.exists(out))

    def _tshark(self, path, *extra):
        # The zero payload is plain data: without -d, tshark decodes it by port (10253 is
        # Wi-SUN EAPOL relay, for one) and calls the zeros a malformed EAP packet.
        cmd = ["tshark", "-r", path, "-o", "ip.check_checksum:TRUE",
               "-o", "udp.check_checksum:TRUE", "-d", "udp.port==10000-59999,data",
               "-d", "udp.port==5201,data"] + list(extra)
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
        return res.stdout.decode().splitlines()

    BAD = ('_ws.malformed || _ws.expert.severity >= "Error" || ip.checksum.status == "Bad" '
           '|| udp.checksum.status == "Bad"')

    def test_tshark_finds_no_malformed_frames(self):
        if shutil.which("tshark") is None:
            print("\nSKIPPED: tshark not installed", file=sys.stderr)
            self.skipTest("SKIPPED: tshark not installed")
        cases = [(proto, vlan, "up") for proto, vlan in LAYOUTS] + [("ipoe", "none", "down")]
        for proto, vlan, direction in cases:
            p = Params(sessions=300, protocol=proto, vlan=vlan, size="imix")
            path = os.path.join(self.dir, "%s-%s-%s.pcap" % (proto, vlan, direction))
            with PcapFileWriter(path) as w:
                w.write_all(scheme.frames_bytes(p, direction))
            chain = "eth:ethertype:" + "vlan:ethertype:" * len(scheme.vlan_ids(vlan, 0))
            if direction == "up" and proto == "pppoe":
                chain += "pppoes:ppp:"
            chain += "ip:udp:data"
            with self.subTest(proto=proto, vlan=vlan, direction=direction):
                self.assertEqual(self._tshark(path, "-Y", self.BAD, "-T", "fields",
                                              "-e", "frame.number"), [])
                protocols = self._tshark(path, "-T", "fields", "-e", "frame.protocols")
                self.assertEqual(len(protocols), 300 * 12)
                self.assertEqual(set(protocols), {chain})

    def test_tshark_check_catches_bad_frames(self):
        if shutil.which("tshark") is None:
            print("\nSKIPPED: tshark not installed", file=sys.stderr)
            self.skipTest("SKIPPED: tshark not installed")
        good = scheme.upstream_bytes(Params(), 0, 64)
        bad_udp, bad_ip = bytearray(good), bytearray(good)
        bad_udp[40] ^= 0xFF
        bad_ip[24] ^= 0xFF
        path = os.path.join(self.dir, "bad.pcap")
        with PcapFileWriter(path) as w:
            w.write_all([good, bytes(bad_udp), bytes(bad_ip), good[:40]])
        flagged = self._tshark(path, "-Y", self.BAD, "-T", "fields", "-e", "frame.number")
        self.assertEqual(flagged, ["2", "3", "4"])


class FieldEngineTest(unittest.TestCase):
    def test_segments_cover_every_session_once(self):
        for proto, vlan in LAYOUTS:
            for n in (1, 2, 254, 255, 4001, 100000):
                p = Params(sessions=n, protocol=proto, vlan=vlan)
                for direction in scheme.DIRECTIONS:
                    segs = fieldengine.segments(p, direction)
                    with self.subTest(proto=proto, vlan=vlan, n=n, direction=direction):
                        self.assertEqual(segs[0].first, 0)
                        for a, b in zip(segs, segs[1:]):
                            self.assertEqual(a.last + 1, b.first)
                        self.assertEqual(segs[-1].last, n - 1)

    def test_segment_count(self):
        # 100k sessions cut at multiples of 254 (server) and 50000 (port): 394 + 1
        self.assertEqual(len(fieldengine.segments(Params(sessions=100000), "up")), 395)
        # with as many servers as sessions, only the port modulus cuts
        p = Params(sessions=100000, server_count=100000)
        self.assertEqual(len(fieldengine.segments(p, "down")), 2)
        # one server: a constant, no cut and no write
        one = fieldengine.segments(Params(sessions=1000, server_count=1), "up")
        self.assertEqual(len(one), 1)
        self.assertNotIn("ip_dst", [w.name for w in one[0].writes])

    def test_engine_output_equals_scheme(self):
        rnd = random.Random(7)
        for proto, vlan in LAYOUTS:
            p = Params(sessions=70000, protocol=proto, vlan=vlan)
            for direction in scheme.DIRECTIONS:
                segs = fieldengine.segments(p, direction)
                for seg in rnd.sample(segs, 12) + [segs[0], segs[-1]]:
                    for i in {seg.first, seg.last, rnd.randint(seg.first, seg.last)}:
                        for size in (64, 1518):
                            with self.subTest(proto=proto, vlan=vlan, direction=direction,
                                              i=i, size=size):
                                self.assertEqual(
                                    fieldengine.apply(p, direction, seg, i, size),
                                    scheme.frame_bytes(p, direction, i, size),
                                )


def load_profile(name):
    """Import a profile file the way TRex does (by path), with a fresh module."""
    path = os.path.join(ROOT, name)
    spec = importlib.util.spec_from_file_location("profile_" + name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ProfileTest(unittest.TestCase):
    """The profiles against a stub ``trex_stl_lib`` (TRex is not installed here)."""

    def setUp(self):
        self.assertNotIn("trex_stl_lib", sys.modules)
        trex_stub.install()
        self.addCleanup(trex_stub.uninstall)

    def streams(self, protocol, tunables, port_direction=0):
        module = load_profile("%s_sessions.py" % protocol)
        profile = module.register()
        self.assertIsInstance(profile, module.STLS1)
        return profile.get_streams(tunables=tunables, direction=port_direction, port_id=0)

    def check_streams(self, streams, params, direction, pps_per_session):
        for s in streams:  # the packet's MACs, not the TRex port's
            self.assertIs(s.mac_src_override_by_pkt, True)
            self.assertEqual(s.mac_dst_override_mode, trex_stub.STLStreamDstMAC_PKT)
        names = [s.name for s in streams]
        self.assertEqual(len(names), len(set(names)))
        total = sum(s.mode.pps for s in streams)
        self.assertAlmostEqual(total, params.sessions * pps_per_session, delta=1e-6 * total)
        covered = {}
        rnd = random.Random(3)
        for s in streams:
            vm = s.packet.vm
            if vm is None:
                first = last = int(s.name.split("-")[1])  # "<direction>-<first>-<size>"
            else:
                var = vm.commands[0]
                first, last = var.min_value, var.max_value
                self.assertEqual((var.size, var.op, var.step), (4, "inc", 1))
            size = len(s.packet.raw) + 4
            covered.setdefault(size, []).append((first, last, s.mode.pps))
            for i in {first, last, rnd.randint(first, last)}:
                self.assertEqual(trex_stub.run_vm(s, i),
                                 scheme.frame_bytes(params, direction, i, size),
                                 "stream %s index %d" % (s.name, i))
        for size, ranges in covered.items():
            ranges.sort()
            self.assertEqual(ranges[0][0], 0)
            self.assertEqual(ranges[-1][1], params.sessions - 1)
            for (_, a1, _), (b0, _, _) in zip(ranges, ranges[1:]):
                self.assertEqual(a1 + 1, b0)
            share = 1.0
            if params.size == "imix":
                share = dict(zip(scheme.IMIX_SIZES, scheme.IMIX_WEIGHTS))[size] / 12
            for a0, a1, rate in ranges:  # every session gets the same rate
                self.assertAlmostEqual(rate / (a1 - a0 + 1), pps_per_session * share)
        return covered

    def test_each_profile_builds_field_engine_streams(self):
        for protocol in scheme.PROTOCOLS:
            for vlan in scheme.VLAN_LAYOUTS:
                with self.subTest(protocol=protocol, vlan=vlan):
                    streams = self.streams(protocol, ["--sessions", "1000", "--vlan", vlan,
                                                      "--direction", "up"])
                    p = Params(sessions=1000, protocol=protocol, vlan=vlan)
                    self.assertEqual(len(streams), 4)  # cut at 254, 508, 762
                    self.check_streams(streams, p, "up", 24000)

    def test_both_directions_follow_the_port(self):
        tun = ["--sessions", "300", "--vlan", "qinq"]
        up = self.streams("pppoe", tun, port_direction=0)
        down = self.streams("pppoe", tun, port_direction=1)
        p = Params(sessions=300, protocol="pppoe", vlan="qinq")
        self.check_streams(up, p, "up", 24000)
        self.check_streams(down, p, "down", 24000)
        self.assertTrue(all(s.name.startswith("up-") for s in up))
        self.assertTrue(all(s.name.startswith("down-") for s in down))

    def test_imix_streams_and_rates(self):
        tun = ["--sessions", "500", "--size", "imix", "--pps_per_session", "1200",
               "--direction", "down", "--subscriber_base", "10.1.0.0"]
        streams = self.streams("ipoe", tun)
        p = Params(sessions=500, size="imix", subscriber_base="10.1.0.0")
        covered = self.check_streams(streams, p, "down", 1200)
        self.assertEqual(sorted(covered), [64, 594, 1518])
        rate = {size: sum(r for _, _, r in ranges) for size, ranges in covered.items()}
        self.assertAlmostEqual(rate[64], 500 * 700)
        self.assertAlmostEqual(rate[594], 500 * 400)
        self.assertAlmostEqual(rate[1518], 500 * 100)

    def test_static_mode_is_one_stream_per_session(self):
        tun = ["--sessions", "20", "--mode", "static", "--vlan", "single", "--direction", "up",
               "--gateway-mac", "02:aa:00:00:00:01"]
        streams = self.streams("pppoe", tun)
        self.assertEqual(len(streams), 20)
        self.assertTrue(all(s.packet.vm is None for s in streams))
        p = Params(sessions=20, protocol="pppoe", vlan="single", gateway_mac="02:aa:00:00:00:01")
        self.check_streams(streams, p, "up", 24000)

    def test_large_session_count_builds(self):
        streams = self.streams("ipoe", ["--sessions", "100000", "--direction", "up"])
        self.assertEqual(len(streams), 395)
        self.check_streams(streams, Params(sessions=100000), "up", 24000)

    def test_bad_tunables(self):
        for tun, word in ((["--vlan", "triple"], "vlan"), (["--size", "12"], "size"),
                          (["--pps_per_session", "0"], "pps_per_session"),
                          (["--sessions", "5000", "--mode", "static"], "static")):
            with self.subTest(tun=tun):
                with self.assertRaises(stl.TunableError) as ctx:
                    self.streams("ipoe", tun)
                self.assertIn(word, str(ctx.exception))

    def test_legacy_keyword_tunables(self):
        # older TRex: get_streams(direction=<port direction>, port_id=..., <tunable>=<value>)
        module = load_profile("ipoe_sessions.py")
        streams = module.register().get_streams(direction=1, port_id=1, sessions="10",
                                                vlan="single")
        self.assertEqual(len(streams), 1)
        self.check_streams(streams, Params(sessions=10, vlan="single"), "down", 24000)

    def test_streams_send_what_check_pcap_accepts(self):
        # what TRex would send: every value of every stream's variable, through the engine
        tun = ["--sessions", "600", "--vlan", "qinq", "--size", "imix", "--direction", "up"]
        streams = self.streams("pppoe", tun)
        path = os.path.join(tempfile.mkdtemp(prefix="trex-profiles-"), "engine.pcap")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        with PcapFileWriter(path) as w:
            for s in streams:
                var = s.packet.vm.commands[0]
                for i in range(var.min_value, var.max_value + 1):
                    w.write(trex_stub.run_vm(s, i))
        p = Params(sessions=600, protocol="pppoe", vlan="qinq", size="imix")
        count, seen, bad = check_pcap.check(path, p, "up")
        self.assertEqual((count, bad), (1800, []))
        self.assertEqual(sorted(seen.items()), [(i, 3) for i in range(600)])

    def test_trex_console_tunable_string(self):
        self.assertEqual(stl.tunables_from_trex_string("sessions=10,vlan=qinq"),
                         ["--sessions", "10", "--vlan", "qinq"])


class NoTrexTest(unittest.TestCase):
    def test_scheme_and_plan_do_not_import_trex(self):
        self.assertNotIn("trex_stl_lib", sys.modules)
        options = stl.parse_tunables("pppoe", ["--sessions", "1000"])
        self.assertEqual(len(stl.plan(options, "up")), 4)
        self.assertNotIn("trex_stl_lib", sys.modules)
        self.assertNotIn("trex", sys.modules)

    @unittest.skipIf(importlib.util.find_spec("trex_stl_lib") is not None
                     or importlib.util.find_spec("trex") is not None, "TRex is importable")
    def test_missing_trex_is_a_clear_import_error(self):
        with self.assertRaises(ImportError) as ctx:
            stl.trex_api()
        self.assertIn("trex-console", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
