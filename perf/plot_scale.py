#!/usr/bin/python3
"""Plot the scale curve of `vbng-perf fastpath --scale`.

Usage: /usr/bin/python3 perf/plot_scale.py <csv> <png> [title]

The CSV has the columns sessions, mpps_per_core, ns_per_packet, io_only_mpps_per_core,
io_only_ns_per_packet (one line per point). The plot shows Mpps per core (left panel) and ns
per packet (right panel) over the number of sessions (log scale), the pipeline beside the
I/O-only loop measured in the same run.
"""

import csv
import sys


def main(argv):
    if len(argv) < 3:
        print("usage: plot_scale.py <csv> <png> [title]", file=sys.stderr)
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"matplotlib is not installed for {sys.executable}: {e}", file=sys.stderr)
        return 1
    with open(argv[1], newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        print(f"{argv[1]}: no data rows", file=sys.stderr)
        return 1
    sessions = [int(r["sessions"]) for r in rows]
    mpps = [float(r["mpps_per_core"]) for r in rows]
    ns = [float(r["ns_per_packet"]) for r in rows]
    io_mpps = [float(r["io_only_mpps_per_core"]) for r in rows]
    io_ns = [float(r["io_only_ns_per_packet"]) for r in rows]

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("sessions")
        ax.grid(True, which="both", alpha=0.3)
    left.plot(sessions, mpps, "o-", color="tab:blue", label="pipeline")
    left.plot(sessions, io_mpps, "o--", color="tab:gray", label="I/O only (same loop)")
    left.set_ylabel("Mpps per worker core")
    left.set_yscale("log")
    left.legend(fontsize=8)
    right.plot(sessions, ns, "s-", color="tab:red", label="pipeline")
    right.plot(sessions, io_ns, "s--", color="tab:gray", label="I/O only (same loop)")
    right.set_ylabel("ns per packet per core")
    right.set_ylim(bottom=0)
    for x, y in zip(sessions, ns):
        right.annotate("%.0f" % y, (x, y), textcoords="offset points", xytext=(0, 6),
                       ha="center", fontsize=8, color="tab:red")
    right.legend(fontsize=8, loc="upper left")
    fig.suptitle(argv[3] if len(argv) > 3 else "vbng fastpath scale", fontsize=11)
    fig.tight_layout()
    fig.savefig(argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
