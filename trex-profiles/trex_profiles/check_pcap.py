"""Check that every frame of a pcap is a frame of the scheme.

Use it on what a generator really sent: TRex's simulator output
(``stl-sim -f ipoe_sessions.py -t sessions=300,direction=up -o sim.pcap``)
or a capture on the device's side of the link.

    /usr/bin/python3 -m trex_profiles.check_pcap sim.pcap --sessions 300 --direction up

Exit status 0 when every frame matches ``frame(i, size)`` for some session
``i`` and the frame's size; prints how many sessions were seen and the
first frames that did not match.
"""

import argparse
import sys
from collections import Counter
from typing import Dict, List, Optional, Tuple

from scapy.utils import RawPcapReader

from . import scheme
from .scheme import Params
from .to_pcap import add_scheme_options, params_from_args


def index_frames(params: Params, direction: str, sizes) -> Dict[bytes, Tuple[int, int]]:
    """Map each scheme frame of the given wire sizes to ``(session, size)``."""
    table = {}
    for size in sizes:
        for i in range(params.sessions):
            table[scheme.frame_bytes(params, direction, i, size)] = (i, size)
    return table


def check(path: str, params: Params, direction: str) -> Tuple[int, Counter, List[int]]:
    """Return (frames read, frames per session, numbers of frames not in the scheme)."""
    sizes = scheme.IMIX_SIZES if params.size == "imix" else (params.size,)
    table = index_frames(params, direction, sizes)
    seen: Counter = Counter()
    bad = []
    count = 0
    reader = RawPcapReader(path)
    try:
        for count, (raw, _) in enumerate(reader, start=1):
            hit = table.get(bytes(raw))
            if hit is None:
                bad.append(count)
            else:
                seen[hit[0]] += 1
    finally:
        reader.close()
    return count, seen, bad


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python3 -m trex_profiles.check_pcap",
        description="Check that a pcap holds only frames of the vbng-lab scheme.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("pcap", help="pcap file to check")
    add_scheme_options(p)
    args = p.parse_args(argv)
    try:
        params = params_from_args(args)
    except ValueError as err:
        print("check_pcap: %s" % err, file=sys.stderr)
        return 2
    count, seen, bad = check(args.pcap, params, args.direction)
    print("%s: %d frames, %d of %d sessions seen, %d frames not in the scheme"
          % (args.pcap, count, len(seen), params.sessions, len(bad)))
    if bad:
        print("first frames not in the scheme: %s" % ", ".join(str(n) for n in bad[:10]))
    return 0 if count and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
