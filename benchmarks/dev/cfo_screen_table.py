"""Issue 16, seventh pass: CFO settings screened around the committed crystals defaults, on the development seeds.

Reads `benchmarks/results/constrained_dev/{PREFIX}_s1*.json` for each prefix given (written by `cfo_dev.py`: dev seeds
11-14, four CFO seeds each: the dev seed, 101, 202, 303; a run named `NAME_sSEED`) and prints one markdown row per
setting and round checked (`NAME@K`): runs, runs meeting every crystals bar, satisfaction (mean / min), the surrogate
and judge gain ratios (means), the mean of each run's smaller ratio, the fewest distinct feasible compositions and
what failed; then per dev seed: runs met and the mean smaller ratio.

usage: python benchmarks/dev/cfo_screen_table.py f1 g1 g2 g3 g4 g5 g6 g7 g9
"""
import collections
import glob
import json
import re
import statistics as st
import sys
from pathlib import Path

D = Path(__file__).resolve().parents[1] / "results" / "constrained_dev"
CHECKS = {"satisfaction_met": "sat", "reward_raised": "reward", "surrogate_half_gain_met": "surrogate",
          "judge_half_gain_met": "judge", "dft_above_pretrained": "dft", "diverse": "diversity"}


def bar_row(seed: int, b: dict) -> dict:
    """One run's bar check (``bar_check``'s dict at one round) as a table row: figures and the checks it failed."""
    fails = [short for key, short in CHECKS.items() if not b[key]]
    fails += ["dominated"] if b["fixed_penalties_better_on_both"] else []
    return {"seed": seed, "sat": b["cfo_satisfaction"], "met": b["met"], "fd": b["feasible_distinct"], "fails": fails,
            "rs": b["surrogate_gain"] / b["surrogate_gain_unconstrained"],
            "rj": b["judge_gain"] / b["judge_gain_unconstrained"]}


def print_markdown(rows: dict[str, list[dict]], label=lambda key: key) -> None:
    """One markdown row per setting: runs, runs met, satisfaction, ratios, fewest feasible compositions, failures."""
    print("| setting | runs | every bar met | satisfaction mean / min | gain ratio surrogate / judge (means) "
          "| mean of min(ratios) | fewest feasible compositions | failed checks |")
    print("|---|---:|---:|---|---|---:|---:|---|")
    for key, r in rows.items():
        fails = collections.Counter(x for e in r for x in e["fails"])
        print(f"| {label(key)} | {len(r)} | {sum(e['met'] for e in r)} | {st.mean(e['sat'] for e in r):.3f} / "
              f"{min(e['sat'] for e in r):.3f} | {st.mean(e['rs'] for e in r):.2f} / {st.mean(e['rj'] for e in r):.2f} "
              f"| {st.mean(min(e['rs'], e['rj']) for e in r):.2f} | {min(e['fd'] for e in r):.0f} | "
              f"{', '.join(f'{k} {v}' for k, v in fails.items()) or '-'} |")


def runs(prefix: str) -> dict[str, list[dict]]:
    """Every CFO run of the prefix's files, by setting and round checked."""
    out: dict[str, list[dict]] = collections.defaultdict(list)
    for f in sorted(glob.glob(str(D / f"{prefix}_s1*.json"))):
        d = json.load(open(f))
        for name, entry in d["cfo"].items():
            for k, b in entry["bars"].items():
                setting = re.sub(r"_s\d+$", "", name)
                out[f"{setting}@{k}"].append(bar_row(d["seed"], b))
    return out


def main(prefixes: list[str]) -> None:
    rows = {k: v for p in prefixes for k, v in runs(p).items()}
    print_markdown(rows)
    print()
    for key, r in rows.items():
        per = collections.defaultdict(list)
        for e in r:
            per[e["seed"]].append(e)
        print(key, "  ".join(f"s{sd}: {sum(e['met'] for e in v)}/{len(v)} min ratio "
                             f"{st.mean(min(e['rs'], e['rj']) for e in v):.2f}" for sd, v in sorted(per.items())))


if __name__ == "__main__":
    main(sys.argv[1:] or ["f1", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g9"])
