#!/usr/bin/env bash
# Builds vbng-up and vbng-perf with profile-guided optimisation (run as root):
#   1. vbng's own crates instrumented (-Cprofile-generate), into target/pgo;
#   2. the instrumented vbng-perf runs the fast-path harness over DPDK net_pcap for every
#      lab layout: both pipelines, IPoE and PPPoE subscribers, untagged, 802.1Q and QinQ,
#      64-byte and IMIX frames, with and without QoS;
#   3. the profiles are merged (llvm-profdata of rustc's own LLVM);
#   4. vbng's crates are built again with -Cprofile-use and --cfg vbng_pgo.
# The pipeline's burst is compiled once in vbng-dataplane (PacketBuffer::process_burst),
# so the profile the harness trains applies to vbng-up's burst as well.
# Result: target/pgo/release/vbng-up and target/pgo/release/vbng-perf. About 14 minutes
# on 2 vCPUs when the dependencies are compiled too, 7 when they are not.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# != 0 ]; then
    echo "pgo-build: takes no arguments (got '$*')" >&2
    exit 2
fi
if [ "$(id -u)" != 0 ]; then
    echo "pgo-build: must run as root (the training runs DPDK)" >&2
    exit 1
fi

scripts/setup.sh
host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ] && command -v rustup >/dev/null; then
    rustup component add llvm-tools >/dev/null
fi
if [ ! -x "$profdata" ]; then
    echo "pgo-build: $profdata not found: llvm-profdata must match rustc's LLVM (rustup component add llvm-tools)" >&2
    exit 1
fi

target="$PWD/target/pgo"
raw="$target/profiles/raw"
merged="$target/profiles/vbng.profdata"
export RUSTC_WRAPPER="$PWD/scripts/pgo-rustc.sh"
# The packages whose crates the wrapper gives the flags to: every workspace member named
# vbng-*, each binary's dependencies among them included (vbng-perf links vbng-aaa,
# vbng-access, vbng-cp and the unikernel's crates too).
mapfile -t packages < <(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"].startswith("vbng-"):
        print("-p"); print(p["name"])')

build() {
    # The wrapper's flags are not part of cargo's fingerprint: remove vbng's own crates so
    # that both phases compile them.
    cargo clean --release --target-dir "$target" "${packages[@]}" 2>/dev/null || true
    VBNG_PGO_RUSTFLAGS="$1" cargo build --release --locked --target-dir "$target" \
        -p vbng-dataplane -p vbng-perf --bin vbng-up --bin vbng-perf
}

echo "pgo-build: 1/4 instrumented build"
build "-Cprofile-generate=$raw"
rm -rf "$raw"
mkdir -p "$target/profiles"

echo "pgo-build: 2/4 training on the fast-path harness"
runs=0
for pipeline in ipoe full; do
    for protocol in ipoe pppoe; do
        for vlan in none single qinq; do
            for size in 64 imix; do
                for qos in "" --qos; do
                    layout="$pipeline $protocol $vlan $size $qos"
                    # shellcheck disable=SC2086 # $qos is empty or one word
                    if ! "$target/release/vbng-perf" fastpath --pipeline "$pipeline" \
                        --protocol "$protocol" --vlan "$vlan" --size "$size" $qos \
                        --sessions 10000 --seconds 0.5 --warmup 0.2 --rounds 1 --no-testpmd \
                        --no-instructions >"$target/profiles/training.log" 2>&1; then
                        echo "pgo-build: training run failed: $layout" >&2
                        tail -n 20 "$target/profiles/training.log" >&2
                        exit 1
                    fi
                    runs=$((runs + 1))
                done
            done
        done
    done
done

echo "pgo-build: 3/4 merging the profiles of $runs runs"
"$profdata" merge -o "$merged" "$raw"

echo "pgo-build: 4/4 optimised build"
build "-Cprofile-use=$merged --cfg vbng_pgo"
echo "pgo-build: done: $target/release/vbng-up and $target/release/vbng-perf (profile-guided, $runs training runs)"
