"""The dev-seed table of docs/benchmarks.md (constrained, issue 16) from benchmarks/dev/cfo_dev.py outputs.

usage: python benchmarks/dev/cfo_dev_table.py [benchmarks/results/constrained_dev]
"""
import json
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/constrained_dev"
RS = {11: "d7_s11", 12: "d8_s12", 13: "d8_s13", 14: "d7_s14"}  # CFO's own seed varied, task and baselines fixed
# Rows naming ess_over, lam_unmet, "feasible_local", reach or feedback_base read runs of options since removed from
# CFOConfig (they last exist at commit c789504 on main); their result files stay readable here.
F = {  # label: ({seed: file}, CFO setting, round)
 "T 1.0 (before; 8 rounds)": ({11: "b1_s11", 12: "b1_s12", 13: "b2_s13"}, "default", "8"),
 "T 1.0, 12 rounds": ({11: "b1_s11", 12: "b1_s12", 13: "b2_s13"}, "default", "12"),
 "reward-only trust region": ({11: "b1_s11", 12: "b1_s12", 13: "b2_s13"}, "trreward", "8"),
 "reward-only trust region, 12 rounds": ({11: "b1_s11", 12: "b1_s12", 13: "b2_s13"}, "trreward", "12"),
 "target floor 0.25": ({11: "b1_s11", 12: "b1_s12"}, "floor25", "8"),
 "target floor 0.25, 12 rounds": ({11: "b1_s11", 12: "b1_s12"}, "floor25", "12"),
 "tight trust region (CFO's T lowered until ESS = 15%)": ({12: "b2_s12", 13: "b2_s13"}, "tight", "8"),
 "tight trust region, 12 rounds": ({12: "b2_s12", 13: "b2_s13"}, "tight", "12"),
 "tight trust region, ESS floor 30%": ({12: "b3_s12"}, "tight_ess30", "8"),
 "CFO alone at T 0.3 (baselines 1.0)": ({11: "b4_s11", 12: "b4_s12", 13: "b4_s13"}, "t03", "8"),
 "CFO alone at T 0.3, 12 rounds": ({11: "b4_s11", 12: "b4_s12", 13: "b4_s13"}, "t03", "12"),
 "CFO alone at T 0.5 (baselines 1.0)": ({11: "b4_s11", 12: "b3_s12", 13: "b4_s13"}, "t05", "8"),
 "CFO alone at T 0.5, 12 rounds": ({11: "b4_s11", 12: "b3_s12", 13: "b4_s13"}, "t05", "12"),
 "**T 0.5 for every variant (adopted)**": ({11: "b5_s11", 12: "b5_s12", 13: "b5_s13"}, "t05shared", "8"),
 "adopted + CFO diversity weight 0.5": ({11: "b6_s11", 12: "b6_s12"}, "div05", "8"),
 "adopted + CFO ESS floor 10%": ({11: "b6_s11", 12: "b6_s12"}, "ess10", "8"),
 "adopted + CFO composition cap 10%": ({12: "b6_s12"}, "cap10", "8"),
 "adopted, re-run with the issue-16 fourth-pass code": ({11: "c2_s11", 12: "c2_s12", 14: "c7_s14"}, "base", "8"),
 "adopted, 12 rounds for every variant": ({12: "c10_s12", 14: "c10_s14"}, "base", "12"),
 "adopted + CFO trust region over compositions, >= 20% (51) effective, T 0.05": ({11: "c1_s11", 12: "c1_s12"}, "k20", "8"),
 "adopted + CFO trust region over compositions, >= 10% (26) effective, T 0.05": ({11: "c2_s11", 12: "c2_s12"}, "k10", "8"),
 "adopted + CFO trust region over compositions, >= 8% (20) effective, T 0.05": ({11: "c2_s11", 12: "c2_s12"}, "k08", "8"),
 "adopted + CFO 400 fine-tuning steps per round": ({11: "c3_s11", 12: "c3_s12"}, "steps400", "8"),
 "adopted + CFO without the velocity anchor": ({11: "c3_s11", 12: "c3_s12"}, "anchor0", "8"),
 "adopted + CFO multiplier cap 30 (1000 before)": ({11: "c3_s11", 12: "c3_s12", 13: "c7_s13", 14: "c8_s14"}, "lmax30", "8"),
 "adopted + CFO multiplier cap 50": ({11: "c9_s11", 14: "c8_s14"}, "lmax50", "8"),
 "adopted + CFO multiplier cap 100": ({11: "c4_s11", 12: "c4_s12"}, "lmax100", "8"),
 "adopted + CFO multiplier 30 where the target is out of reach (`lam_unmet`)":
     ({11: "c5_s11", 12: "c5_s12", 13: "c7_s13", 14: "c7_s14"}, "unmet30", "8"),
 "adopted + CFO multiplier 10 where the target is out of reach": ({11: "c5_s11", 12: "c5_s12"}, "unmet10", "8"),
 "adopted + CFO penalty over 2 neighbours (4 before)": ({12: "c11_s12", 14: "c11_s14"}, "nb2", "8"),
 "adopted + CFO penalty over 8 neighbours (4 before)": ({11: "c6_s11", 12: "c6_s12"}, "nb8", "8"),
 "adopted + CFO 8 neighbours, multiplier 30 where out of reach": ({11: "c6_s11", 12: "c6_s12"}, "nb8_unmet30", "8"),
 # fifth pass
 "adopted, re-run with the issue-16 fifth-pass code": ({14: "d1_s14"}, "base", "8"),
 "adopted + CFO feasibility first where a target is out of reach (`out_of_reach=\"feasible\"`)":
     ({11: "d2_s11", 12: "d2_s12", 13: "d2_s13", 14: "d1_s14"}, "feas", "8"),
 "adopted + CFO feasibility first over samples whose 4 nearest all satisfy (`\"feasible_local\"`)":
     ({11: "d2_s11", 12: "d2_s12", 13: "d2_s13"}, "feasl", "8"),
 "adopted + CFO feasibility first, also where the constraints raise the temperature (`reach=\"temperature\"`)":
     ({11: "d3_s11", 12: "d3_s12", 14: "d3_s14"}, "feasT", "8"),
 "adopted + CFO feasibility first, feedback from the reached rate (`feedback_base=\"achieved\"`)":
     ({11: "d3_s11", 12: "d3_s12", 14: "d3_s14"}, "feas_ach", "8"),
 "adopted + CFO feasibility first, `reach=\"temperature\"`, `feedback_base=\"achieved\"`":
     ({11: "d3_s11", 12: "d3_s12", 13: "d5_s13", 14: "d3_s14"}, "feasT_ach", "8"),
 "adopted + CFO feasibility first, `reach=\"temperature\"`, `feedback_base=\"achieved\"`, target feedback 1.0":
     ({11: "d4_s11", 12: "d4_s12", 13: "d5_s13", 14: "d4_s14"}, "feasT_ach_k1", "8"),
 "adopted + CFO `feedback_base=\"achieved\"` (penalty where out of reach)":
     ({11: "d4_s11", 12: "d4_s12", 13: "d5_s13", 14: "d4_s14"}, "ach", "8"),
 "adopted + CFO target floor 0.25 (0.1 before)": ({11: "d6_s11", 12: "d6_s12", 14: "d6_s14"}, "floor25", "8"),
 "adopted + CFO feasibility first, target floor 0.25": ({11: "d6_s11", 12: "d6_s12", 14: "d6_s14"}, "feas_floor25", "8"),
 "adopted, CFO's own seed 101 (task and baselines unchanged)": (RS, "base_rs1", "8"),
 "adopted, CFO's own seed 202": (RS, "base_rs2", "8"),
 "adopted + CFO feasibility first, CFO's own seed 101": (RS, "feas_rs1", "8"),
 "adopted + CFO feasibility first, CFO's own seed 202": (RS, "feas_rs2", "8"),
 "adopted, CFO's own seed 303": ({sd: f"d9_s{sd}" for sd in RS}, "base_rs3", "8"),
 "adopted + CFO feasibility first, CFO's own seed 303": ({sd: f"d9_s{sd}" for sd in RS}, "feas_rs3", "8"),
}
CHECKS = (("satisfaction_met", "sat"), ("surrogate_half_gain_met", "surrogate"), ("judge_half_gain_met", "judge"),
          ("dft_above_pretrained", "DFT"), ("diverse", "diversity"))


def cell(b: dict) -> str:
    """CFO's satisfaction / gain ratios / distinct feasible, top share, and what missed."""
    rs = b["surrogate_gain"] / b["surrogate_gain_unconstrained"]
    rj = b["judge_gain"] / b["judge_gain_unconstrained"]
    miss = [label for key, label in CHECKS if not b[key]] + (["dominated"] if b["fixed_penalties_better_on_both"] else [])
    head = f"{b['cfo_satisfaction']:.3f} / {rs:.2f} / {rj:.2f} / {b['feasible_distinct']:.0f}, {b['feasible_top_share']:.2f} "
    return head + ("met" if b["met"] else "**miss: " + ", ".join(miss) + "**")


SEEDS = (11, 12, 13, 14)
print("| setting | " + " | ".join(f"seed {sd}" for sd in SEEDS) + " |")
print("|---" * (len(SEEDS) + 1) + "|")
for label, (files, name, k) in F.items():
    cells = [cell(json.load(open(f"{root}/{files[sd]}.json"))["cfo"][name]["bars"][k]) if sd in files else "not run"
             for sd in SEEDS]
    print(f"| {label} | " + " | ".join(cells) + " |")

# CFO's own seed varied (task, pretrained flow and baselines fixed): per dev seed, each run's surrogate / judge ratio,
# and the mean over runs and seeds, for the adopted setting and feasibility first (fifth pass).
RUNS = {"adopted": [({11: "c2_s11", 12: "c2_s12", 13: "b5_s13", 14: "d1_s14"}, {13: "t05shared"}, "base"),
                    (RS, {}, "base_rs1"), (RS, {}, "base_rs2"), ({sd: f"d9_s{sd}" for sd in RS}, {}, "base_rs3")],
        "feasibility first": [({11: "d2_s11", 12: "d2_s12", 13: "d2_s13", 14: "d1_s14"}, {}, "feas"),
                              (RS, {}, "feas_rs1"), (RS, {}, "feas_rs2"), ({sd: f"d9_s{sd}" for sd in RS}, {}, "feas_rs3")]}
print("\n| setting, CFO seeds (dev seed, 101, 202, 303) | " + " | ".join(f"seed {sd}" for sd in SEEDS) + " | mean | met |")
print("|---" * (len(SEEDS) + 3) + "|")
for label, runs in RUNS.items():
    cells, rs_all, rj_all, met = [], [], [], 0
    for sd in SEEDS:
        parts = []
        for files, names, name in runs:
            try:
                b = json.load(open(f"{root}/{files[sd]}.json"))["cfo"][names.get(sd, name)]["bars"]["8"]
            except (FileNotFoundError, KeyError):
                continue
            rs, rj = b["surrogate_gain"] / b["surrogate_gain_unconstrained"], b["judge_gain"] / b["judge_gain_unconstrained"]
            rs_all.append(rs)
            rj_all.append(rj)
            met += bool(b["met"])
            parts.append(f"{rs:.2f} / {rj:.2f}")
        cells.append(", ".join(parts) or "not run")
    mean = f"{sum(rs_all) / len(rs_all):.2f} / {sum(rj_all) / len(rj_all):.2f}" if rs_all else "-"
    print(f"| {label} | " + " | ".join(cells) + f" | {mean} | {met} of {len(rs_all)} |")
