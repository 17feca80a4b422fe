#!/usr/bin/env bash
# Quick start, part 1: installs what is needed, builds, and runs the lab demo
# (`vbngctl demo`): two real DHCP subscribers through vbng-up, programmed by
# vbng-cp over PFCP. Extra arguments go to `vbngctl demo` (for example --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --workspace --bins
exec target/release/vbngctl demo "$@"
