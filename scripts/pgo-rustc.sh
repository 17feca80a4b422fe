#!/usr/bin/env bash
# RUSTC_WRAPPER for scripts/pgo-build.sh: passes VBNG_PGO_RUSTFLAGS to vbng's own
# crates only, so that the dependencies are compiled once, as usual, for both phases.
set -euo pipefail
rustc=$1
shift
for arg in "$@"; do
    case $arg in
        vbng_* | vbng-*)
            if [ "${prev:-}" = "--crate-name" ]; then
                # shellcheck disable=SC2086 # the flags are separate words
                exec "$rustc" "$@" ${VBNG_PGO_RUSTFLAGS:-}
            fi
            ;;
    esac
    prev=$arg
done
exec "$rustc" "$@"
