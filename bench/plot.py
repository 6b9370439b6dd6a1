#!/usr/bin/env python3
"""Plot `moat-bench compare` results: added latency (p50 solid, p99 dashed) against request rate,
one colour per gateway, log-log. Rates a gateway did not sustain (>= 0.1% errors or p99 >= 50 ms)
are drawn hollow; rates it was not loaded at (after failing a lower one) are absent.

Usage: python3 bench/plot.py bench-compare.json docs/bench-compare.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"moatd": "#1b7837", "nginx": "#2166ac", "portkey": "#d6604d", "litellm": "#762a83",
           "passthrough": "#878787"}


def main(src, dst):
    with open(src) as f:
        doc = json.load(f)
    rows = [r for r in doc["summary"]["rows"] if r["mode"] == "plain" and r["gateway"] != "direct"]
    phases = [p for p in doc["phases"] if p["mode"] == "plain"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for gw in dict.fromkeys(r["gateway"] for r in rows):
        mine = sorted((r for r in rows if r["gateway"] == gw), key=lambda r: r["rate"])
        colour = COLOURS.get(gw, None)
        for key, style, label in (("added_p50_us", "-", "p50"), ("added_p99_us", "--", "p99")):
            xs = [r["rate"] for r in mine if r[key] == r[key] and r[key] > 0]
            ys = [r[key] / 1000.0 for r in mine if r[key] == r[key] and r[key] > 0]
            ax.plot(xs, ys, style, color=colour, label=f"{gw} {label}", linewidth=1.6)
            for r in mine:
                v = r[key]
                if not (v == v and v > 0):
                    continue
                held = all(p["sustained"] for p in phases if p["path"] == gw and p["rate"] == r["rate"])
                ax.plot([r["rate"]], [v / 1000.0], "o", color=colour, markersize=4,
                        markerfacecolor=colour if held else "white")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (requests/s, open loop)")
    ax.set_ylabel("added latency over direct (ms)")
    s = doc["settings"]
    ax.set_title(f"Latency each gateway adds (median of {s['runs']} runs, {s['duration_s']:.0f} s phases, "
                 f"{s['cpus']} cores)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(dst)
    print(f"plot written to {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
