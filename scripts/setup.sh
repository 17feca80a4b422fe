#!/usr/bin/env bash
# Installs what vbng's build, demo and tests need on Debian (run as root):
# the lab's real peers (dhclient, ping, iproute2), tshark as an independent
# decoder, DPDK, scapy for the traffic profiles, and the Rust components the
# checks use. Quiet when all is present.
set -euo pipefail

packages=(iproute2 isc-dhcp-client iputils-ping ethtool tshark tcpdump iperf3 curl pkg-config gcc freeradius freeradius-utils ppp pppoe user-mode-linux dhcpcd-base
    # DPDK (headers for the bindings, the PMD libraries, dpdk-testpmd) and libclang for bindgen
    dpdk dpdk-dev libdpdk-dev clang libclang-dev
    # The TRex profiles' packet builders and the benchmark plots (Debian's python3)
    python3-scapy python3-matplotlib
    # The per-customer unikernel's VMM (QEMU microvm)
    qemu-system-x86
    # An IPFIX collector (nfcapd) and its reader, for the NAT log export
    nfdump)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]}; run as root to install them" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # tshark asks whether non-root users may capture; answer "no" up front.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
if command -v rustup >/dev/null; then
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
fi
