"""TRex STL streams for the scheme: shared code of the session profiles.

The profiles (``ipoe_sessions.py``, ``pppoe_sessions.py``) are thin
wrappers around ``SessionsProfile``.  Planning the streams (``plan``) is
pure Python; only ``build_streams`` touches TRex, and imports its API
(``trex_stl_lib.api``, or ``trex.stl.api`` in newer trees) when it runs,
so the scheme and the plan work on machines without TRex.

Tunables (``start -f ipoe_sessions.py -t sessions=1000,vlan=qinq``; TRex
passes them to ``get_streams`` as an argparse list)::

    sessions          number of subscriber sessions (100)
    pps_per_session   packets per second per session and direction (24000)
    direction         up | down | both (both: up on even ports, down on odd)
    vlan              none | single | qinq (none)
    size              wire size with FCS, e.g. 64, or imix (64)
    subscriber_base   first subscriber IPv4 (100.64.0.1)
    server_base       first server IPv4 (203.0.113.1)
    server_count      number of servers (254)
    gateway_mac       UP access-side gateway MAC (02:00:5e:00:01:01)
    core_mac          UP core port MAC (02:00:00:00:c0:01)
    next_hop_mac      core router MAC (02:00:5e:00:02:01)
    mode              fe: field-engine streams covering many sessions each;
                      static: one stream per session, no field engine (fe)

Rates: each direction sends ``sessions * pps_per_session`` packets per
second in total, every session at ``pps_per_session``; IMIX splits each
session's rate 7:4:1 over 64, 594 and 1518-byte streams.
"""

import argparse
from dataclasses import dataclass
from typing import List, Optional, Sequence

from . import fieldengine, scheme
from .fieldengine import Segment
from .scheme import Params
from .to_pcap import params_from_args

DEFAULT_PPS_PER_SESSION = 24000.0
#: Most sessions ``mode=static`` accepts (one TRex stream per session and size).
STATIC_MAX_SESSIONS = 4096
#: The name TRex's field engine knows the subscriber index by.
INDEX_VAR = "i"
#: ``CTRexVmInsFixHwCs.L4_TYPE_UDP`` in TRex.
L4_TYPE_UDP = 11
#: ``STLStreamDstMAC_PKT`` in TRex: the destination MAC comes from the packet.
DST_MAC_FROM_PACKET = 1


class TunableError(ValueError):
    """A tunable has a bad value; the message names it and what it accepts."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would call sys.exit
        raise TunableError("%s: %s" % (self.prog, message))


def make_parser(protocol: str) -> argparse.ArgumentParser:
    """The tunables of the ``protocol`` profile, as an argparse parser."""
    p = _Parser(
        prog="%s_sessions.py" % protocol,
        description="vbng-lab %s sessions: N subscribers at a fixed rate each" % protocol,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def opt(name: str, **kw) -> None:
        spellings = ["--" + name]
        if "_" in name:
            spellings.append("--" + name.replace("_", "-"))
        p.add_argument(*spellings, dest=name, **kw)

    opt("sessions", type=int, default=scheme.DEFAULT_SESSIONS, help="subscriber sessions")
    opt("pps_per_session", type=float, default=DEFAULT_PPS_PER_SESSION,
        help="packets per second per session and direction")
    opt("direction", choices=("up", "down", "both"), default="both",
        help="both: upstream on even ports, downstream on odd ports")
    opt("vlan", choices=scheme.VLAN_LAYOUTS, default="none", help="access VLAN layout")
    opt("size", type=str, default="64", help="wire size with FCS (64..9216) or imix")
    opt("subscriber_base", default=scheme.DEFAULT_SUBSCRIBER_BASE, help="first subscriber IPv4")
    opt("server_base", default=scheme.DEFAULT_SERVER_BASE, help="first server IPv4")
    opt("server_count", type=int, default=scheme.DEFAULT_SERVER_COUNT, help="servers")
    opt("gateway_mac", default=scheme.DEFAULT_GATEWAY_MAC, help="UP access gateway MAC")
    opt("core_mac", default=scheme.DEFAULT_CORE_MAC, help="UP core port MAC")
    opt("next_hop_mac", default=scheme.DEFAULT_NEXT_HOP_MAC, help="core router MAC")
    opt("mode", choices=("fe", "static"), default="fe",
        help="fe: field-engine streams; static: one stream per session")
    return p


@dataclass(frozen=True)
class Options:
    """Parsed tunables: the scheme's parameters plus how to send them."""

    params: Params
    pps_per_session: float
    direction: str
    mode: str


def parse_tunables(protocol: str, tunables: Sequence[str]) -> Options:
    """Parse TRex tunables (``["--sessions", "1000", ...]``) for ``protocol``."""
    args = make_parser(protocol).parse_args(list(tunables))
    try:
        params = params_from_args(args, protocol)
    except ValueError as err:
        raise TunableError("%s_sessions.py: %s" % (protocol, err)) from None
    if not args.pps_per_session > 0:
        raise TunableError(
            "%s_sessions.py: pps_per_session: expected a positive rate, found %s"
            % (protocol, args.pps_per_session)
        )
    if args.mode == "static" and params.sessions > STATIC_MAX_SESSIONS:
        raise TunableError(
            "%s_sessions.py: mode=static builds one stream per session; expected at most "
            "%d sessions, found %d (use mode=fe)" % (protocol, STATIC_MAX_SESSIONS, params.sessions)
        )
    return Options(params, args.pps_per_session, args.direction, args.mode)


@dataclass(frozen=True)
class StreamPlan:
    """One TRex stream: a size, a rate and the sessions it covers."""

    name: str
    direction: str
    size: int
    pps: float
    segment: Segment


def sizes_and_weights(params: Params):
    """``[(size, share of a session's rate)]``: one entry, or IMIX's three."""
    if params.size == "imix":
        total = sum(scheme.IMIX_WEIGHTS)
        return [(s, w / total) for s, w in zip(scheme.IMIX_SIZES, scheme.IMIX_WEIGHTS)]
    return [(params.size, 1.0)]


def plan(options: Options, direction: str) -> List[StreamPlan]:
    """The streams for one direction (``up`` or ``down``)."""
    scheme.check_direction(direction)
    params = options.params
    if options.mode == "static":
        segs = [Segment(first=i, count=1, writes=()) for i in range(params.sessions)]
    else:
        segs = fieldengine.segments(params, direction)
    out = []
    for size, share in sizes_and_weights(params):
        for seg in segs:
            out.append(
                StreamPlan(
                    name="%s-%d-%d" % (direction, seg.first, size),
                    direction=direction,
                    size=size,
                    pps=seg.count * options.pps_per_session * share,
                    segment=seg,
                )
            )
    return out


def port_direction(options: Options, port_dir: int) -> str:
    """Which traffic a port sends: the tunable, or by TRex's port direction."""
    if options.direction != "both":
        return options.direction
    return "up" if port_dir % 2 == 0 else "down"


def trex_api():
    """TRex's STL API module (imported only when streams are built)."""
    try:
        from trex_stl_lib import api
    except ImportError:
        try:
            from trex.stl import api
        except ImportError:
            raise ImportError(
                "TRex's STL API is not importable: run the profile from trex-console "
                "or stl-sim, or add TRex's automation/trex_control_plane/interactive to "
                "PYTHONPATH"
            ) from None
    return api


def build_streams(api, params: Params, plans: Sequence[StreamPlan]) -> list:
    """Turn the plan into ``STLStream`` objects with ``api`` (TRex's STL API)."""
    l4_udp = getattr(getattr(api, "CTRexVmInsFixHwCs", None), "L4_TYPE_UDP", L4_TYPE_UDP)
    dst_from_pkt = getattr(api, "STLStreamDstMAC_PKT", DST_MAC_FROM_PACKET)
    streams = []
    for sp in plans:
        seg = sp.segment
        pkt = scheme.frame(params, sp.direction, seg.first, sp.size)
        vm = None
        if seg.count > 1:
            cmds = [
                api.STLVmFlowVar(
                    name=INDEX_VAR, min_value=seg.first, max_value=seg.last,
                    size=4, op="inc", step=1,
                )
            ]
            for w in seg.writes:
                if w.width == 4:
                    cmds.append(api.STLVmWrFlowVar(fv_name=INDEX_VAR, pkt_offset=w.offset,
                                                   add_val=w.add))
                else:
                    cmds.append(api.STLVmWrMaskFlowVar(
                        fv_name=INDEX_VAR, pkt_offset=w.offset, pkt_cast_size=w.width,
                        mask=w.mask, shift=0, add_value=w.add,
                    ))
            # IPv4 and UDP checksums: NIC offload, or TRex's software fallback.  The
            # offsets go by layer name: some older TRex releases ignore numeric ones.
            cmds.append(api.STLVmFixChecksumHw(l3_offset="IP", l4_offset="UDP",
                                               l4_type=l4_udp))
            vm = api.STLScVmRaw(cmds)
        streams.append(
            api.STLStream(
                name=sp.name,
                packet=api.STLPktBuilder(pkt=pkt, vm=vm),
                mode=api.STLTXCont(pps=sp.pps),
                # both MACs are part of the session key: never the port's own
                mac_src_override_by_pkt=True,
                mac_dst_override_mode=dst_from_pkt,
            )
        )
    return streams


class SessionsProfile(object):
    """A TRex STL profile sending the scheme's traffic for one protocol."""

    def __init__(self, protocol: str) -> None:
        if protocol not in scheme.PROTOCOLS:
            raise ValueError("protocol: expected one of %s, found %r"
                             % ("|".join(scheme.PROTOCOLS), protocol))
        self.protocol = protocol

    def get_streams(self, tunables: Optional[Sequence[str]] = None, **kwargs) -> list:
        """Streams for the port TRex loads the profile on.

        ``tunables`` is the argparse list TRex builds from ``-t``.  Older
        TRex passes ``-t`` values as keywords instead; those are accepted
        too (except ``direction``, which such TRex uses for the port).
        ``kwargs['direction']`` is TRex's port direction (0 even, 1 odd).
        """
        port_dir = int(kwargs.pop("direction", 0) or 0)
        kwargs.pop("port_id", None)
        if tunables is None:
            tunables = []
        if isinstance(tunables, dict):
            kwargs.update(tunables)
            tunables = []
        argv = list(tunables)
        for key, value in kwargs.items():
            argv += ["--" + key, str(value)]
        options = parse_tunables(self.protocol, argv)
        direction = port_direction(options, port_dir)
        return build_streams(trex_api(), options.params, plan(options, direction))


def tunables_from_trex_string(text: str) -> List[str]:
    """``"sessions=1000,vlan=qinq"`` (trex-console ``-t``) as an argparse list."""
    argv = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise TunableError("tunables: expected key=value, found %r" % item)
        argv += ["--" + key.strip(), value.strip()]
    return argv


def main(argv: Optional[List[str]] = None) -> int:
    """Print the streams a profile would give TRex, without TRex."""
    import sys

    p = argparse.ArgumentParser(
        prog="python3 -m trex_profiles.stl",
        description="Show the TRex streams of a sessions profile for some tunables.",
    )
    p.add_argument("protocol", choices=scheme.PROTOCOLS)
    p.add_argument("-t", dest="tunables", default="", help="as in trex-console: k=v,k=v")
    p.add_argument("--list", action="store_true", help="list every stream")
    args = p.parse_args(argv)
    try:
        options = parse_tunables(args.protocol, tunables_from_trex_string(args.tunables))
    except TunableError as err:
        print(err, file=sys.stderr)
        return 2
    dirs = ("up", "down") if options.direction == "both" else (options.direction,)
    for d in dirs:
        plans = plan(options, d)
        total = sum(sp.pps for sp in plans)
        print("%-4s %6d streams  %14.0f pps  (%d sessions x %g pps, size %s, mode %s)"
              % (d, len(plans), total, options.params.sessions, options.pps_per_session,
                 options.params.size, options.mode))
        if args.list:
            for sp in plans:
                print("     %-24s sessions %d..%d  %12.0f pps  writes: %s"
                      % (sp.name, sp.segment.first, sp.segment.last, sp.pps,
                         ", ".join("%s@%d+%d" % (w.name, w.offset, w.add)
                                   for w in sp.segment.writes) or "-"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
