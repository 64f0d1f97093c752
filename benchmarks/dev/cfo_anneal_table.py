"""Issue 16, sixth pass: the annealed violation bound on the development seeds, over CFO's own seeds.

Reads `benchmarks/results/constrained_dev/e*_s1*.json` (written by `cfo_dev.py`, CFO only, on the adopted setting's
baselines: `b5_s11`, `b5_s12`, `b5_s13`, `c7_s14`) and the adopted setting's 16 runs of the fifth pass (dev seeds
11-14 x CFO seeds: the dev seed, 101, 202, 303), and prints one markdown row per setting: runs, runs meeting every
crystals bar, satisfaction (mean / min), the surrogate and judge gain ratios (means), the mean of each run's smaller
ratio, the fewest distinct feasible compositions, and what failed.

usage: python benchmarks/dev/cfo_anneal_table.py
"""
import collections
import glob
import json
import re
from pathlib import Path

from cfo_screen_table import D, bar_row, print_markdown  # the sibling script: one row format for both tables

rows: dict[str, list[dict]] = collections.defaultdict(list)


def label(key: str) -> str:
    """``a20k4f1nb8`` -> "anneal from 0.2 over 4 rounds, kappa 1, 8 neighbours" (kappa 0.5, 4 neighbours unless named)."""
    key, rebased = key.removesuffix(" @8nb"), key.endswith(" @8nb")
    suffix = " (re-run at the adopted defaults: the fixed baselines' penalty over 8 neighbours too)" if rebased else ""
    if key == "new_default":
        return "**adopted**: anneal from 0.2 over 4 rounds, kappa 1, 8 neighbours" + suffix
    m = re.fullmatch(r"(prev_)?a(\d+)k(\d)(f1)?(nb8)?(st300)?", key)
    if not m:
        return "anchored to the previous round, no annealing" if key == "prev_base" else key
    parts = [f"anneal from 0.{int(m[2]):02d}".rstrip("0") + f" over {m[3]} rounds"]
    parts += ["kappa 1"] if m[4] else []
    parts += ["8 neighbours"] if m[5] else []
    parts += ["300 fine-tuning steps"] if m[6] else []
    parts += ["anchored to the previous round (every variant)"] if m[1] else []
    return ", ".join(parts) + suffix


def add(setting: str, seed: int, entry: dict) -> None:
    rows[setting].append(bar_row(seed, entry["bars"]["8"]))


def load(name: str) -> dict:
    return json.loads((D / f"{name}.json").read_text())


for sd, (f, key) in {11: ("b5_s11", "t05shared"), 12: ("b5_s12", "t05shared"), 13: ("b5_s13", "t05shared"),
                     14: ("c7_s14", "base")}.items():
    add("before: no annealing, kappa 0.5, 4 neighbours", sd, load(f)["cfo"][key])
for sd, f in {11: "d7_s11", 12: "d8_s12", 13: "d8_s13", 14: "d7_s14"}.items():
    for key in ("base_rs1", "base_rs2"):
        add("before: no annealing, kappa 0.5, 4 neighbours", sd, load(f)["cfo"][key])
for sd in (11, 12, 13, 14):
    add("before: no annealing, kappa 0.5, 4 neighbours", sd, load(f"d9_s{sd}")["cfo"]["base_rs3"])
for path in sorted(glob.glob(str(D / "e[0-9]*_s1*.json"))):
    d = json.loads(Path(path).read_text())
    rebased = Path(path).name.startswith("e8_")  # run at the adopted defaults: fixed baselines over 8 neighbours too
    for key, entry in d["cfo"].items():
        name = re.sub(r"_(rs\d|s\d{3})$", "", key)
        add(name + (" @8nb" if rebased else ""), d["seed"], entry)

print_markdown(rows, label)
