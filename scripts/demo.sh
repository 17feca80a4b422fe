#!/usr/bin/env bash
# Quick start, part 1: installs what is needed, builds, and runs the lab demo
# (`vbngctl demo`): two real DHCP subscribers through vbng-up, programmed by
# vbng-cp over PFCP. Extra arguments go to `vbngctl demo` (for example --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# An explicit target dir, so a CARGO_TARGET_DIR in the environment does not
# move the binaries away from the path run below.
cargo build --release --workspace --bins --target-dir "$PWD/target"
exec target/release/vbngctl demo "$@"
