#!/usr/bin/env bash
# Quick start, part 2: installs what is needed and runs every check and test:
# formatting, clippy, the no_std build of the fast path, the unikernel image,
# unit/property/golden tests, the tshark decode test, the namespace labs with
# real dhclient, pppd and QEMU, and the fuzz targets over their seed corpora.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

section() { printf '\n==== %s\n' "$*"; }

section "format"
cargo fmt --all --check
(cd fuzz && cargo fmt --check)

section "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p vbng-dataplane -p vbng-cups --no-default-features --all-targets --locked -- -D warnings

section "no_std builds (nothing from std may leak into the fast path, the PFCP codec or QoS)"
cargo build -p vbng-dataplane -p vbng-cups --no-default-features --locked
cargo build -p vbng-qos --locked

section "unikernel image (freestanding, its own workspace): format, clippy, build"
(cd unikernel-target/image && cargo fmt --check && cargo clippy --release --locked -- -D warnings \
    && cargo build --release --locked)

section "binaries"
cargo build --workspace --bins --locked

section "tests"
cargo test --workspace --locked
cargo test -p vbng-dataplane -p vbng-cups --no-default-features --lib --locked

section "profile-guided build: the rustc wrapper flags vbng's own crates and no other"
pgo_wrapped() { VBNG_PGO_RUSTFLAGS="-Cprofile-use=/p --cfg vbng_pgo" scripts/pgo-rustc.sh echo "$@"; }
[ "$(pgo_wrapped --crate-name vbng_dataplane --edition 2024)" = "--crate-name vbng_dataplane --edition 2024 -Cprofile-use=/p --cfg vbng_pgo" ]
[ "$(pgo_wrapped --edition 2024 --crate-name vbng_up src/bin/vbng-up.rs)" = "--edition 2024 --crate-name vbng_up src/bin/vbng-up.rs -Cprofile-use=/p --cfg vbng_pgo" ]
[ "$(pgo_wrapped --crate-name hashbrown --edition 2021)" = "--crate-name hashbrown --edition 2021" ]
[ "$(pgo_wrapped - --crate-name ___ --print=file-names)" = "- --crate-name ___ --print=file-names" ]
echo "pgo-rustc.sh: ok"

section "traffic profiles (scapy packet builders, TRex profile loading, pcap writer)"
(cd trex-profiles && /usr/bin/python3 -m unittest discover -s tests)

section "fuzz targets: build and replay the seed corpora"
fuzz_targets=(dataplane_pipeline wire_views gtpu pfcp_message dhcpv4_server dhcpv6_server radius_packet radius_request spool_replay ppp_session pppoe_discovery route_icmp nat_translate uk_day0)
# An explicit target dir: a CARGO_TARGET_DIR in the caller's environment must
# not move the binaries away from where they are run below.
fuzz_target_dir="$PWD/fuzz/target"
cargo build --manifest-path fuzz/Cargo.toml --locked --target-dir "$fuzz_target_dir"
for t in "${fuzz_targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    # The seed corpus, then a bounded number of mutated inputs (no coverage
    # feedback on stable, but every input must still parse without a panic).
    "$fuzz_target_dir/debug/$t" -runs=20000 -max_total_time=20 "fuzz/corpus/$t" 2>&1 | tail -n 1
done
echo "all checks passed"
