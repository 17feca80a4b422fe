"""A minimal pcap (libpcap 2.4, Ethernet) writer for prebuilt frames.

scapy's ``PcapWriter`` dissects nothing but still wraps every frame in a
packet object; writing bytes directly keeps 100k-session pcaps to seconds.
Timestamps are deterministic: frame ``n`` is stamped ``n`` microseconds.
"""

import struct
from typing import BinaryIO, Iterable

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


class PcapFileWriter(object):
    """Write Ethernet frames to a pcap file; use as a context manager."""

    def __init__(self, path: str) -> None:
        self._file: BinaryIO = open(path, "wb", buffering=1 << 20)
        self._file.write(_GLOBAL.pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        self.count = 0

    def write(self, frame: bytes) -> None:
        """Append one frame (no FCS)."""
        n = self.count
        self._file.write(_RECORD.pack(n // 1000000, n % 1000000, len(frame), len(frame)))
        self._file.write(frame)
        self.count = n + 1

    def write_all(self, frames: Iterable[bytes]) -> int:
        """Append every frame; returns how many were written."""
        for f in frames:
            self.write(f)
        return self.count

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def __enter__(self) -> "PcapFileWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
