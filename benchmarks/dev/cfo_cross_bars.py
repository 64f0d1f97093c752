"""Issue 16, tenth pass: the crystals bar of one screen's CFO runs against another screen's baselines (same dev seed).

`cfo_dev.py --baselines-from` reuses baseline traces of an earlier file. When the two files come from different
environments (unpinned dependencies move the pretrained flow slightly), or when CFO is to be compared with baselines
fine-tuned another way (projected or not), this recomputes `bar_check` at round K from the CFO runs of
`{CFO_TAG}_s{seed}.json` and the baselines of `{BASE_TAG}_s{seed}.json`. Each run's own round 0 is its pretrained flow.
It prints one line per setting: runs met, the mean of each run's smaller gain ratio, satisfaction, the failed checks,
the runs met per dev seed, the fewest distinct feasible compositions and CFO's absolute figures.

usage: python benchmarks/dev/cfo_cross_bars.py CFO_TAG BASE_TAG [K]
"""
import collections
import json
import re
import statistics as st
import sys
from pathlib import Path

from flowevo.benchmarks.constrained import bar_check

D = Path(__file__).resolve().parents[1] / "results" / "constrained_dev"
CHECKS = ("satisfaction_met", "surrogate_half_gain_met", "judge_half_gain_met", "dft_above_pretrained", "diverse")


def figures(t: dict) -> dict:
    return {"reward_mean": t["reward"], "constraint_satisfaction": t["sat"], "judge_mean": t["judge"],
            "dft_mean_labelled": t["dft"], "feasible_distinct": t["fd"], "feasible_top_share": t["fts"]}


def main(cfo_tag: str, base_tag: str, k: int = 8) -> None:
    rows: dict[str, list] = collections.defaultdict(list)
    for s in (11, 12, 13, 14):
        runs, base = D / f"{cfo_tag}_s{s}.json", D / f"{base_tag}_s{s}.json"
        if not runs.exists() or not base.exists():
            continue
        baselines = json.loads(base.read_text())["baselines"]
        for name, entry in json.loads(runs.read_text())["cfo"].items():
            m = {"pretrained": figures(entry["trace"][0]), "cfo": figures(entry["trace"][k]),
                 **{v: figures(b["trace"][k]) for v, b in baselines.items()}}
            b = bar_check("crystals", m, 256)
            fails = [c for c in CHECKS if not b[c]] + (["dominated"] if b["fixed_penalties_better_on_both"] else [])
            ratio = min(b["surrogate_gain"] / b["surrogate_gain_unconstrained"], b["judge_gain"] / b["judge_gain_unconstrained"])
            t = entry["trace"][k]
            rows[re.sub(r"_s\d+$", "", name)].append((s, b["met"], ratio, fails, b["cfo_satisfaction"], t["fd"],
                                                      t["reward"], t["judge"], t["dft"]))
    for name, r in rows.items():
        per_seed = {s: sum(x[1] for x in r if x[0] == s) for s in sorted({x[0] for x in r})}
        fails = collections.Counter(f for x in r for f in x[3])
        print(f"{cfo_tag}:{name} against {base_tag}: met {sum(x[1] for x in r)} / {len(r)}, mean min ratio "
              f"{st.mean(x[2] for x in r):.2f}, satisfaction mean / min {st.mean(x[4] for x in r):.3f} / "
              f"{min(x[4] for x in r):.3f}, failed {dict(fails) or '-'}, met per seed {per_seed}; fewest feasible "
              f"compositions {min(x[5] for x in r):.0f}; CFO surrogate / judge / DFT (eV), distinct feasible (means) "
              f"{st.mean(x[6] for x in r):.2f} / {st.mean(x[7] for x in r):.2f} / {st.mean(x[8] for x in r):.2f}, "
              f"{st.mean(x[5] for x in r):.0f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 8)
