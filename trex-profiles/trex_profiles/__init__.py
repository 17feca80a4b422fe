"""Traffic for the vbng user plane: the "vbng-lab" scheme, TRex profiles, pcaps.

Modules:

- ``scheme``: the per-session packet builders (scapy, and a byte-exact fast
  path without scapy objects) and the pcap order;
- ``fieldengine``: how TRex's field engine covers N sessions with few
  streams (pure; also simulates the engine for the tests);
- ``stl``: the TRex STL streams shared by ``ipoe_sessions.py`` and
  ``pppoe_sessions.py`` (imports TRex only when building streams);
- ``pcap``: a small pcap writer;
- ``to_pcap``: the command line that writes upstream/downstream pcaps;
- ``check_pcap``: the command line that checks a pcap against the scheme.
"""
