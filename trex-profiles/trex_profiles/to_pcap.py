"""Write the scheme's upstream or downstream frames to a pcap.

    cd trex-profiles
    /usr/bin/python3 -m trex_profiles.to_pcap --sessions 1000 --protocol pppoe \\
        --vlan qinq --size imix --direction up --out up.pcap

Frames are in pcap order (packet k of every session, then packet k+1) and
exactly ``size - 4`` bytes each (no FCS).  Replay them with DPDK's net_pcap:
``--vdev 'net_pcap0,rx_pcap=up.pcap,infinite_rx=1'``.
"""

import argparse
import sys
import time
from typing import List, Optional

from . import scheme
from .pcap import PcapFileWriter
from .scheme import Params


def add_scheme_options(p: argparse.ArgumentParser) -> None:
    """Add the options that select the scheme's parameters and direction."""
    p.add_argument("--sessions", type=int, default=scheme.DEFAULT_SESSIONS)
    p.add_argument("--protocol", choices=scheme.PROTOCOLS, default="ipoe")
    p.add_argument("--vlan", choices=scheme.VLAN_LAYOUTS, default="none")
    p.add_argument("--size", default="64", help="wire size with FCS (64..9216) or imix")
    p.add_argument("--direction", choices=scheme.DIRECTIONS, default="up")
    p.add_argument("--subscriber-base", default=scheme.DEFAULT_SUBSCRIBER_BASE)
    p.add_argument("--server-base", default=scheme.DEFAULT_SERVER_BASE)
    p.add_argument("--server-count", type=int, default=scheme.DEFAULT_SERVER_COUNT)
    p.add_argument("--gateway-mac", default=scheme.DEFAULT_GATEWAY_MAC)
    p.add_argument("--core-mac", default=scheme.DEFAULT_CORE_MAC)
    p.add_argument("--next-hop-mac", default=scheme.DEFAULT_NEXT_HOP_MAC)


def make_parser() -> argparse.ArgumentParser:
    """The command line options."""
    p = argparse.ArgumentParser(
        prog="python3 -m trex_profiles.to_pcap",
        description="Write vbng-lab scheme frames to a pcap.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_scheme_options(p)
    p.add_argument("--out", required=True, help="pcap file to write")
    p.add_argument("--packets-per-session", type=int, default=None,
                   help="frames per session (default: 1, or 12 for imix)")
    p.add_argument("--builder", choices=("fast", "scapy"), default="fast",
                   help="fast: struct-packed bytes; scapy: the scapy reference (slow)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def params_from_args(args: argparse.Namespace, protocol: Optional[str] = None) -> Params:
    """Build (and validate) the scheme parameters from parsed options; ``protocol``, when
    given, is fixed by the caller (a profile) instead of read from the options."""
    return Params(
        sessions=args.sessions,
        protocol=protocol or args.protocol,
        vlan=args.vlan,
        subscriber_base=args.subscriber_base,
        server_base=args.server_base,
        server_count=args.server_count,
        gateway_mac=args.gateway_mac,
        core_mac=args.core_mac,
        next_hop_mac=args.next_hop_mac,
        size=args.size,
        packets_per_session=getattr(args, "packets_per_session", None),
    )


def write_pcap(params: Params, direction: str, out: str, builder: str = "fast") -> int:
    """Write every frame of ``direction`` to ``out``; returns the frame count."""
    if builder == "scapy":
        frames = (bytes(f) for f in scheme.frames(params, direction))
    else:
        frames = scheme.frames_bytes(params, direction)
    with PcapFileWriter(out) as w:
        return w.write_all(frames)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    args = make_parser().parse_args(argv)
    try:
        params = params_from_args(args)
    except ValueError as err:
        print("to_pcap: %s" % err, file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        count = write_pcap(params, args.direction, args.out, args.builder)
    except OSError as err:
        print("to_pcap: cannot write %s: %s" % (args.out, err.strerror or err), file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    if not args.quiet:
        print(
            "wrote %d %s frames (%d sessions x %d, %s %s/%s) to %s in %.2f s (%.0f frames/s)"
            % (count, args.direction, params.sessions, params.effective_packets_per_session,
               params.size, params.protocol, params.vlan, args.out, elapsed,
               count / elapsed if elapsed > 0 else float("inf"))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
