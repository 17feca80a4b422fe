"""TRex STL profile: N PPPoE subscriber sessions of the vbng-lab scheme.

PPPoE: Ether / [802.1Q tags] / PPPoE session / PPP / IPv4 / UDP upstream,
Ether / IPv4 / UDP downstream; every session at pps_per_session.

    trex> start -f pppoe_sessions.py -p 0 1 -t sessions=1000,vlan=single
    trex> start -f pppoe_sessions.py -p 0 -t direction=up,size=imix,sessions=100000

See README.md beside this file for the tunables and the scheme.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from trex_profiles.stl import SessionsProfile  # noqa: E402


class STLS1(SessionsProfile):
    """PPPoE sessions; tunables as in trex_profiles/stl.py."""

    def __init__(self):
        super(STLS1, self).__init__("pppoe")


def register():
    """Entry point TRex calls when it loads the profile."""
    return STLS1()
