"""CPU decode rate before / after a change, back to back: two checkouts' ``src`` folders, interleaved.

Each measurement is a fresh process that imports flowevo from one of the two folders, measures the
float32 matmul rate (n = 1024), decodes batch 1,024 with the shipped digits flow (rk4, 10 steps,
the codec's default settings; best of 5 after one warm-up) and the matmul rate again, and reports
the decode rate as a share of the bound (best matmul rate / (FLOPs per call x 40)). Rounds
alternate the order (before-after, after-before) so a change in load hits both sides alike.

    python benchmarks/decode_ab.py --before /path/to/main/src --after src --threads 1 2 --rounds 4 \
        --out benchmarks/results/throughput/cpu_before_after.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os, time, torch
torch.set_num_threads(int(os.environ["AB_THREADS"]))
import flowevo
from flowevo.benchmarks.throughput import linear_flops_per_sample, matmul_rate
from flowevo.domains.digits.models import load_digit_models
from flowevo.flow import Condition, FixedGrid, ResidualCodec
flow = load_digit_models().flow
codec = ResidualCodec(flow, FixedGrid("rk4", 10))
g = torch.Generator().manual_seed(0)
r, c = torch.randn(1024, 16, generator=g), Condition.from_labels(torch.randint(0, 10, (1024,), generator=g))
load0 = os.getloadavg()[0]
m0 = matmul_rate(1024, 1.0)
with torch.inference_mode():
    codec.decode_latent(r, c)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter(); codec.decode_latent(r, c); best = min(best, time.perf_counter() - t)
m1 = matmul_rate(1024, 1.0)
bound = max(m0, m1) / (linear_flops_per_sample(flow) * 40)
print(json.dumps({"flowevo": flowevo.__file__, "decodes_per_s": 1024 / best, "matmul_flops_per_s": [m0, m1],
                  "share": 1024 / best / bound, "load_1min": [load0, os.getloadavg()[0]]}))
"""


def measure(src: str, threads: int) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": src,
        "AB_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="src folder of the checkout before the change")
    ap.add_argument("--after", required=True, help="src folder of the checkout after the change")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    sides = {"before": str(Path(a.before).resolve()), "after": str(Path(a.after).resolve())}
    runs: dict[str, dict[str, list]] = {str(t): {"before": [], "after": []} for t in a.threads}
    for k in range(a.rounds):
        for t in a.threads:
            for side in ("before", "after") if k % 2 == 0 else ("after", "before"):
                m = measure(sides[side], t)
                runs[str(t)][side].append(m)
                print(
                    f"round {k} threads {t} {side:6s}: {m['decodes_per_s']:7.0f} decodes/s, share {m['share']:.2f}, "
                    f"load {m['load_1min'][0]:.1f}",
                    flush=True,
                )
    summary = {}
    for t, per in runs.items():
        med = {
            side: {
                "share_median": statistics.median(r["share"] for r in rs),
                "decodes_per_s_median": statistics.median(r["decodes_per_s"] for r in rs),
                "share_all": [round(r["share"], 3) for r in rs],
            }
            for side, rs in per.items()
        }
        paired = [b["share"] / a_["share"] for a_, b in zip(per["before"], per["after"])]
        med["after_over_before_share"] = {
            "median": statistics.median(paired),
            "per_round": [round(x, 3) for x in paired],
        }
        summary[t] = med
        print(
            f"threads {t}: share before {med['before']['share_median']:.2f}, after {med['after']['share_median']:.2f}, "
            f"after / before (paired by round) median {med['after_over_before_share']['median']:.3f}"
        )
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(
            json.dumps(
                {"sides": sides, "rounds": a.rounds, "summary": summary, "runs": runs, "cores": os.cpu_count()},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
