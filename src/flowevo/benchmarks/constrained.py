"""Constrained flow optimisation benchmark (issue 5): adaptive CFO against unconstrained and
fixed-penalty fine-tuning, on a synthetic 2-D task with a checkable answer and on crystals.

Every variant runs the same :class:`~flowevo.cfo.ConstrainedFlowOptimiser` from the same
pretrained flow with the same seed, rounds, samples, temperature and regulariser; only the
multiplier differs: ``unconstrained`` (0), ``fixed_small`` (0.3), ``fixed_large`` (10; units:
reward standard deviations per unit of smoothed violation indicator) and ``cfo`` (adaptive,
starting at 0, allowed violation rate ``max_violation`` per constraint). ``pretrained`` is the
round-0 flow.

**synthetic**: the pretrained flow is fitted to a 2-D mixture of four Gaussians (sd 0.5) at
(-1.5, +-1.5) and (1.0, +-1.5); reward ``r(x) = -|x - (3, 0)|``; constraint ``x_0 <= 1``
(a quarter of the pretrained mass violates it). Checkable answers: (i) the hard constrained
optimum is the point (1, 0) with reward -2 (no feasible sample can score more); (ii) the
optimum of the CFO problem ``max E_p[r] - alpha KL(p || p0)`` s.t. ``P_p(x_0 > 1) <= delta`` is
``p* ~ p0 exp(r / alpha - nu 1{x_0 > 1})`` (``nu`` the multiplier that meets the rate); with the
exact mixture density we trace its reward-vs-KL frontier by importance sampling (no learning)
and compare each variant's (KL, reward) with it.

**crystals**: the Perov-5 CFM (heat_ref-conditioned, sampled under the null condition) trained
on a 90% split of the CSV; reward = an MLP surrogate of ``ind_gap`` fitted on the same split
(held-out quality reported); constraints: SMACT validity with ``oxidation_states_set='pymatgen_sp'``
and a formation-energy ceiling (the training median of heat_ref) judged by CHGNet minus per-element
reference energies fitted on training crystals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowevo.benchmarks.machine import load_average, machine_info
from flowevo.cfo import CFOConfig, CFOResult, ConstrainedFlowOptimiser, FinetuneConfig, null_condition, sample_flow
from flowevo.devices import require_cpu
from flowevo.flow import Condition, FixedGrid, MLPVelocity, TrainConfig, train_flow
from flowevo.jsonio import strict_json, write_json
from flowevo.objectives import Constraint, FunctionObjective, LocalEvaluator

VARIANTS = ("pretrained", "unconstrained", "fixed_small", "fixed_large", "cfo")
FIXED = {"unconstrained": 0.0, "fixed_small": 0.3, "fixed_large": 10.0}
TASKS = ("synthetic", "crystals")
BARS = {"synthetic": 0.95, "crystals": 0.9}


# ---------------------------------------------------------------------------------- synthetic task
@dataclass(frozen=True)
class SyntheticTask:
    """A 2-D mixture ``p0``, reward ``-|x - target|`` and the half-plane constraint ``x_0 <= bound``."""

    centres: tuple[tuple[float, float], ...] = ((-1.5, -1.5), (-1.5, 1.5), (1.0, -1.5), (1.0, 1.5))
    sigma: float = 0.5
    target: tuple[float, float] = (3.0, 0.0)
    bound: float = 1.0

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` exact samples of ``p0``: ``(n, 2)``."""
        c = torch.tensor(self.centres)
        k = torch.randint(0, len(c), (n,), generator=generator)
        return c[k] + self.sigma * torch.randn(n, 2, generator=generator)

    def reward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 2) -> (N,)``: minus the distance to the target."""
        return -(x.double() - torch.tensor(self.target, dtype=torch.float64, device=x.device)).norm(dim=1)

    def evaluator(self) -> LocalEvaluator:
        """The black boxes: reward (max) and the constraint ``x_0 <= bound``."""
        return LocalEvaluator([FunctionObjective("reward", "max", lambda b: self.reward(b.x))],
                              [Constraint("x0_max", lambda b: b.x[:, 0].double(), bound=self.bound)])

    def hard_optimum(self) -> dict[str, Any]:
        """The best feasible point (projection of the target onto the half-plane) and its reward."""
        point = (min(self.target[0], self.bound), self.target[1])
        return {"point": list(point), "reward": float(-math.dist(point, self.target))}

    def pretrain(self, seed: int, steps: int = 1500, n: int = 8192, device: str = "cpu") -> MLPVelocity:
        """Fit the pretrained flow (one class, no condition dropout) to ``n`` samples of ``p0`` (drawn on the CPU) on
        ``device``."""
        x = self.sample(n, torch.Generator().manual_seed(seed)).to(device)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = MLPVelocity((2,), num_classes=1, hidden=64, depth=3).to(device)
        cfg = TrainConfig(steps=steps, batch_size=256, lr=2e-3, condition_dropout=0.0, seed=seed)
        return train_flow(model, x, Condition.from_labels(torch.zeros(n, dtype=torch.long), device), cfg,
                          show_progress=False).model


def optimum_frontier(task: SyntheticTask, delta: float | None, alphas: Sequence[float], n: int = 400_000,
                     seed: int = 0) -> list[dict[str, float]]:
    """Exact optimum of ``max E[r] - alpha KL(p || p0)`` (s.t. ``P(x_0 > bound) <= delta``; None: unconstrained)
    for each ``alpha``, by self-normalised importance sampling of ``p* ~ p0 exp(r/alpha - nu 1{viol})`` from ``n``
    exact ``p0`` samples; ``nu`` in closed form (the violation rate is ``W_v e^-nu / (W_f + W_v e^-nu)``).
    Returns ``alpha, nu, reward, violation, kl, ess`` per alpha."""
    x = task.sample(n, torch.Generator().manual_seed(seed)).double()
    r, viol = task.reward(x), (x[:, 0] > task.bound).double()

    def stats(alpha: float, nu: float) -> dict[str, float]:
        logw = r / alpha - nu * viol
        logw = logw - logw.max()
        w = torch.exp(logw)
        p = w / w.sum()
        kl = float((p * logw).sum() - torch.log(w.mean()))
        return {"alpha": alpha, "nu": nu, "reward": float((p * r).sum()), "violation": float((p * viol).sum()),
                "kl": kl, "ess": float(1.0 / (p ** 2).sum())}

    out = []
    bad = viol > 0
    for alpha in alphas:
        s = stats(alpha, 0.0)
        if delta is not None and s["violation"] > delta and (~bad).any():
            # violation(nu) = W_v e^-nu / (W_f + W_v e^-nu) = delta  <=>  nu = log((1 - delta) W_v / (delta W_f))
            log_wv, log_wf = torch.logsumexp(r[bad] / alpha, 0), torch.logsumexp(r[~bad] / alpha, 0)
            s = stats(alpha, float(log_wv - log_wf + math.log((1 - delta) / delta)))
        out.append(s)
    return out


def frontier_reward_at(frontier: list[dict[str, float]], kl: float, min_ess: float = 200.0) -> float | None:
    """The frontier's reward at ``kl`` (linear interpolation over reliable points; None outside their range)."""
    pts = sorted((f["kl"], f["reward"]) for f in frontier if f["ess"] >= min_ess)
    if not pts or kl < pts[0][0] or kl > pts[-1][0]:
        return None
    return float(np.interp(kl, [p[0] for p in pts], [p[1] for p in pts]))


# ---------------------------------------------------------------------------------- crystals task
class CrystalSetup:
    """Models and black boxes of the crystals task, built on the training split of ``data``."""

    def __init__(self, data: str | Path, seed: int, cfm_steps: int = 3000, surrogate_steps: int = 3000,
                 chgnet_rows: int = 300, max_rows: int | None = None, log: Callable[[str], None] = print,
                 judge_kwargs: dict[str, Any] | None = None) -> None:
        from flowevo.domains.crystals.constraints import energy_ceiling_constraint, smact_strict_constraint
        from flowevo.domains.crystals.data import load_cdvae_csv, split_indices
        from flowevo.domains.crystals.fitting import fit_crystal_models
        from flowevo.domains.crystals.objectives import property_objective, structures_payload
        from flowevo.domains.crystals.predictors import fit_independent

        table = load_cdvae_csv(data, ("heat_ref", "ind_gap"), limit=max_rows)
        tr, held = split_indices(len(table), (0.9, 0.1), seed)
        self.table, self.train, self.held = table, table.subset(tr), table.subset(held)
        models = fit_crystal_models(self.train, "heat_ref", seed, cfm_steps, surrogate_steps, surrogate_property="ind_gap",
                                    gbr_estimators=None, chgnet_rows=chgnet_rows, log=lambda s: log(f"crystals: {s}"))
        self.model, self.surrogate, self.formation = models.model, models.surrogate, models.formation
        log("crystals: fitting the independent ind_gap judge (gradient boosting; evaluation only)")
        self.judge = fit_independent(self.train, property="ind_gap", seed=seed + 1, **(judge_kwargs or {}))
        self.ceiling = float(np.median(self.train.properties["heat_ref"]))
        self.payload = structures_payload(self.model.representation)
        self.evaluator = LocalEvaluator([property_objective(self.surrogate, "band_gap", "max")],
                                        [smact_strict_constraint(), energy_ceiling_constraint(self.formation, self.ceiling)])
        self.dft_gap = {tuple(sorted(_symbols(s))): float(v) for s, v in
                        zip(table.structures, table.properties["ind_gap"])}
        self.chgnet_rows = models.chgnet_rows

    def surrogate_quality(self) -> dict[str, Any]:
        """The surrogate and the independent judge on the held-out 10%: Pearson r, ROC AUC of ``ind_gap > 0``, MAE."""
        from scipy.stats import pearsonr
        from sklearn.metrics import roc_auc_score

        y = self.held.properties["ind_gap"]
        out: dict[str, Any] = {"held_out_rows": len(y)}
        for name, model in (("surrogate", self.surrogate), ("judge", self.judge)):
            p = model.predict(self.held.structures, self.held.formulas)
            auc = float(roc_auc_score(y > 0, p)) if 0 < (y > 0).sum() < len(y) else math.nan
            q = {"pearson": float(pearsonr(p, y)[0]), "auc_gap_positive": auc, "mae": float(np.abs(p - y).mean())}
            out.update(q if name == "surrogate" else {f"judge_{k}": v for k, v in q.items()})
        return out

    def monitor(self, candidates: Any, feasible: torch.Tensor) -> dict[str, float]:
        """Per-round figures of a round's own samples (never used in fine-tuning): the independent judge's mean
        gap, the DFT ``ind_gap`` mean where the composition is labelled, and the composition spread of all and of
        the feasible samples (distinct reduced formulas, share of the most common one in 256 samples)."""
        from flowevo.domains.crystals.diversity import composition_spread

        structs = list(candidates.extra["structures"])
        ok = [s for s in structs if s is not None]
        judge = self.judge.predict(ok) if ok else np.zeros(0)
        labelled = [self.dft_gap[k] for k in (tuple(sorted(_symbols(s))) for s in ok) if k in self.dft_gap]
        every = composition_spread(structs)
        feas = composition_spread([s for s, f in zip(structs, feasible.tolist()) if f])
        return {"judge_mean": float(judge.mean()) if len(judge) else math.nan,
                "dft_mean_labelled": float(np.mean(labelled)) if labelled else math.nan,
                "dft_labelled_share": len(labelled) / max(len(ok), 1),
                "distinct": every["distinct"], "top_share": every["top_share"],
                "feasible_n": feas["n"], "feasible_distinct": feas["distinct"], "feasible_top_share": feas["top_share"]}

    def sample_figures(self, model: torch.nn.Module, n: int, seed: int) -> dict[str, Any]:
        """Extra figures of ``n`` fresh samples: structure validity, distinct compositions, DFT gap where labelled."""
        from flowevo.domains.crystals.validity import structure_valid

        _, x = sample_flow(model, n, null_condition(model), torch.Generator().manual_seed(seed), FixedGrid("rk4", 10),
                           self.model.encoder)
        structs = [s for s in self.payload(x)["structures"] if s is not None]
        keys = [tuple(sorted(_symbols(s))) for s in structs]
        labelled = [self.dft_gap[k] for k in keys if k in self.dft_gap]
        counts: dict[str, int] = {}
        for s in structs:
            f = s.composition.reduced_formula
            counts[f] = counts.get(f, 0) + 1
        return {"structure_valid": float(np.mean([structure_valid(s) for s in structs])) if structs else math.nan,
                "distinct_compositions": len(set(keys)), "samples": n,
                "dft_labelled_share": len(labelled) / max(len(structs), 1),
                "dft_ind_gap_mean_labelled": float(np.mean(labelled)) if labelled else math.nan,
                "top_compositions": sorted(counts.items(), key=lambda kv: -kv[1])[:8]}


def _symbols(s: Any) -> list[str]:
    return [sp.symbol for sp in s.species]


# ---------------------------------------------------------------------------------- running variants
def run_variants(model: torch.nn.Module, evaluator: Any, condition: Condition | None, config: CFOConfig,
                 out_dir: Path | None, encoder: Any = None, payload: Any = None, meta: dict | None = None,
                 variants: Sequence[str] = VARIANTS, log: Callable[[str], None] = print,
                 show_progress: bool = False, monitor: Any = None, diversity_key: Any = None,
                 project: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 projected: Sequence[str] | None = None) -> dict[str, CFOResult]:
    """Run every fine-tuning variant (``pretrained`` is the round-0 record of each run). CFO's own mechanisms stay
    CFO's: a fixed multiplier has no violation bound to anneal (``anneal_from``), no archive (``replay``), no weight
    floor (``feasible_floor``), and ``project`` applies to the variants in ``projected`` only (default: all)."""
    results: dict[str, CFOResult] = {}
    for name in variants:
        if name == "pretrained":
            continue
        cfg = (replace(config, fixed_multiplier=FIXED[name], anneal_from=None, replay=0, feasible_floor=0.0)
               if name in FIXED else replace(config, fixed_multiplier=None))
        log(f"  {name}")
        ckpt_dir = None if out_dir is None or name != "cfo" else out_dir
        results[name] = ConstrainedFlowOptimiser(model, evaluator, condition, cfg, encoder=encoder, payload=payload,
                                                 out_dir=ckpt_dir, meta=meta, monitor=monitor,
                                                 diversity_key=diversity_key,
                                                 project=project if projected is None or name in projected else None,
                                                 ).run(show_progress=show_progress)
    return results


def _variant_metrics(res: CFOResult, round_index: int = -1) -> dict[str, Any]:
    rec = res.records[round_index]
    return {"reward_mean": rec.reward_mean, "constraint_satisfaction": rec.satisfaction,
            "constraint_satisfaction_per_constraint": rec.constraint_satisfaction,
            "kl_or_distance_to_pretrained": rec.kl, "kl_stderr": rec.kl_stderr, "rounds": rec.round,
            "multipliers_final": rec.multipliers, "failed_final": rec.failed, **rec.monitored,
            "trace": [r.to_dict() for r in res.records]}


def task_metrics(results: dict[str, CFOResult]) -> dict[str, Any]:
    """``variant -> {reward_mean, constraint_satisfaction, kl_or_distance_to_pretrained, rounds, trace, ...}``
    (plus the monitored figures of the last round, e.g. ``judge_mean``, ``feasible_distinct``)."""
    any_run = next(iter(results.values()))
    out = {"pretrained": {**_variant_metrics(any_run, 0), "trace": [any_run.records[0].to_dict()]}}
    out.update({name: _variant_metrics(r) for name, r in results.items()})
    return out


def bar_check(task: str, metrics: dict[str, Any], samples: int = 256) -> dict[str, Any]:
    """The done-when bar of ``task`` at one seed from its variant metrics.

    Both tasks: CFO's satisfaction >= the bar, its reward above the pretrained flow's, and no fixed penalty
    better on both reward and satisfaction. Crystals also: CFO's mean gain over the pretrained flow >= half the
    unconstrained run's gain by the surrogate and by the independent judge, its DFT-labelled mean above the
    pretrained flow's, and among its feasible samples >= 50 distinct compositions per 256 samples (scaled to
    ``samples`` per round) with none > 20%.
    """
    cfo, pre, free = metrics["cfo"], metrics["pretrained"], metrics["unconstrained"]
    bar = BARS[task]
    out: dict[str, Any] = {"satisfaction_bar": bar, "cfo_satisfaction": cfo["constraint_satisfaction"],
                           "cfo_reward": cfo["reward_mean"], "pretrained_reward": pre["reward_mean"],
                           "satisfaction_met": cfo["constraint_satisfaction"] >= bar,
                           "reward_raised": cfo["reward_mean"] > pre["reward_mean"]}
    dominated_by = [v for v in ("fixed_small", "fixed_large")
                    if metrics[v]["reward_mean"] > cfo["reward_mean"]
                    and metrics[v]["constraint_satisfaction"] > cfo["constraint_satisfaction"]]
    out["fixed_penalties_better_on_both"] = dominated_by
    checks = [out["satisfaction_met"], out["reward_raised"], not dominated_by]
    if task == "crystals":
        gain = {"surrogate": (cfo["reward_mean"] - pre["reward_mean"], free["reward_mean"] - pre["reward_mean"]),
                "judge": (cfo["judge_mean"] - pre["judge_mean"], free["judge_mean"] - pre["judge_mean"])}
        for k, (c, f) in gain.items():
            out[f"{k}_gain"], out[f"{k}_gain_unconstrained"] = c, f
            out[f"{k}_half_gain_met"] = bool(c >= 0.5 * f)
        out["dft_above_pretrained"] = bool(cfo["dft_mean_labelled"] > pre["dft_mean_labelled"])
        out["feasible_distinct"], out["feasible_top_share"] = cfo["feasible_distinct"], cfo["feasible_top_share"]
        out["diverse"] = bool(cfo["feasible_distinct"] >= 50 * samples / 256 and cfo["feasible_top_share"] <= 0.2)
        checks += [out["surrogate_half_gain_met"], out["judge_half_gain_met"], out["dft_above_pretrained"], out["diverse"]]
    out["met"] = bool(all(checks))
    return out


# ---------------------------------------------------------------------------------- the benchmark
def default_configs(seed: int, rounds: int | None = None, samples: int | None = None) -> dict[str, CFOConfig]:
    """The settings of each task (chosen on the development seeds 11-14, never on the reported seeds).

    Crystals (issue 16): softmax temperature 0.5 for every variant (third pass: at 1.0 CFO's weights kept an effective
    sample size far above the 15% floor, so each round moved the flow less than its trust region allowed); and for CFO
    (sixth pass) an allowed violation rate annealed from 0.2 to ``max_violation`` over the first 4 rounds
    (``anneal_from``, ``anneal_rounds``: the early rounds move toward reward under a loose bound instead of toward
    feasibility wherever it is cheapest), target feedback 1.0 and the penalty averaged over 8 neighbours (every
    variant's penalty: they differ only in the multiplier). Over 16 development runs (4 seeds x 4 CFO seeds) every
    crystals bar was met in 12 against 7 for the fifth pass's setting (``anneal_from=None, target_feedback=0.5,
    neighbours=4`` gives it back). With fewer than 4 rounds the annealing ends at the last round. Tenth pass: CFO keeps
    an archive of the 96 best feasible samples so far, one per composition (``replay``), and spreads 5% of each
    round's weights over the feasible compositions (``feasible_floor``); the benchmark fine-tunes CFO on its samples'
    decoded structures (``structure_projection``). The fixed-penalty baselines stay as they were. Over the same 16
    development runs every crystals bar was met in 14 (13 against fixed penalties that are projected too; the ninth
    pass's setting met 8 against the same baselines, made in the same environment)."""
    ft = FinetuneConfig(steps=200, batch_size=256, lr=1e-3, anchor=0.1)
    syn = CFOConfig(rounds=8, samples=512, temperature=1.0, max_violation=0.02, finetune=ft, kl_samples=256,
                    neighbours=4, target_feedback=1.0, seed=seed)
    cry = CFOConfig(rounds=8, samples=256, temperature=0.5, min_ess=0.15, max_violation=0.02, finetune=ft,
                    kl_samples=128, neighbours=8, target_feedback=1.0, diversity=1.0, max_key_share=0.05,
                    anneal_from=0.2, anneal_rounds=4, replay=96, feasible_floor=0.05, seed=seed)
    over = {k: v for k, v in (("rounds", rounds), ("samples", samples)) if v is not None}
    syn = replace(syn, **over)
    cry = replace(cry, **over, anneal_rounds=min(cry.anneal_rounds, max(over.get("rounds", cry.rounds), 1)))
    return {"synthetic": replace(syn, kl_samples=min(syn.kl_samples, syn.samples)),
            "crystals": replace(cry, kl_samples=min(cry.kl_samples, cry.samples))}


SUMMARY_METRICS = ("reward_mean", "constraint_satisfaction", "kl_or_distance_to_pretrained", "judge_mean",
                   "dft_mean_labelled", "dft_labelled_share", "distinct", "top_share", "feasible_distinct",
                   "feasible_top_share")


def summarise(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean, sample std, min, max and the per-seed values of every variant's final figures over the seeds' runs."""
    out: dict[str, Any] = {}
    seeds = list(runs)
    for task in {t for r in runs.values() for t in r["tasks"]}:
        out[task] = {}
        for variant in VARIANTS:
            row = {}
            for key in SUMMARY_METRICS:
                vals = [runs[sd]["tasks"][task][variant].get(key) for sd in seeds if task in runs[sd]["tasks"]]
                if all(v is None for v in vals):
                    continue
                arr = np.array([math.nan if v is None else float(v) for v in vals])
                fin = arr[np.isfinite(arr)]
                row[key] = {"mean": float(fin.mean()) if len(fin) else None,
                            "std": float(fin.std(ddof=1)) if len(fin) > 1 else None,
                            "min": float(fin.min()) if len(fin) else None, "max": float(fin.max()) if len(fin) else None,
                            "per_seed": dict(zip(seeds, [None if not math.isfinite(v) else float(v) for v in arr]))}
            out[task][variant] = row
    return out


def run_constrained_benchmark(out_dir: str | Path, data: str | Path | None = None, seed: int = 0,
                              seeds: Sequence[int] | None = None, tasks: Sequence[str] = TASKS,
                              rounds: int | None = None, samples: int | None = None, cfm_steps: int = 3000,
                              pretrain_steps: int = 1500, max_rows: int | None = None, command: str | None = None,
                              log: Callable[[str], None] = print, show_progress: bool = False,
                              crystal_kwargs: dict[str, Any] | None = None, device: str = "cpu") -> dict[str, Any]:
    """Run the tasks at every seed (``seeds``; default ``[seed]``) on ``device`` (the crystals task: CPU only).

    Writes ``out_dir/seed_<s>/`` per seed (that seed's ``metrics.json``, ``<task>_rounds.png``, the synthetic
    samples and frontier plots, the adaptive run's round checkpoints under ``checkpoints/<task>/``) and
    ``out_dir/metrics.json`` (every seed's run under ``runs``, mean and spread per variant under ``summary``,
    the bar per seed under ``bars``) with ``<task>_seeds.png``.
    """
    from flowevo.benchmarks.constrained_plots import plot_seed_summary

    seeds = [int(seed)] if not seeds else [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    for t in tasks:
        if t not in TASKS:
            raise ValueError(f"unknown task {t!r}; use {list(TASKS)}")
    if "crystals" in tasks:
        require_cpu(device, "the constrained benchmark's crystals task",
                    "the crystals domain's Whitening encoder and surrogate take no device")
        if data is None or not Path(data).is_file():
            raise FileNotFoundError(f"crystals task: Perov-5 CSV not found at {data} (give --data PATH)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    machine = machine_info(command or f"flowevo benchmark constrained --out {out_dir} --seeds {','.join(map(str, seeds))}")
    runs: dict[str, Any] = {}
    for sd in seeds:
        log(f"seed {sd}")
        runs[str(sd)] = run_seed(out_dir / f"seed_{sd}", data, sd, tasks, rounds, samples, cfm_steps, pretrain_steps,
                                 max_rows, log, show_progress, crystal_kwargs, device)
    summary = summarise(runs)
    bars = {t: {"per_seed": {sd: runs[sd]["bars"][t] for sd in runs if t in runs[sd]["bars"]}} for t in tasks}
    for t in tasks:
        bars[t]["met_every_seed"] = all(b["met"] for b in bars[t]["per_seed"].values())
    first = runs[str(seeds[0])]
    metrics: dict[str, Any] = {
        "benchmark": "constrained", "command": machine["command"], "device": device, "seeds": seeds, "variants": list(VARIANTS),
        "fixed_multipliers": FIXED, "multiplier_units": first["multiplier_units"],
        "kl_or_distance_to_pretrained": first["kl_or_distance_to_pretrained"],
        "summary": summary, "bars": bars, "runs": runs, "machine": machine,
    }
    for t in tasks:
        plot_seed_summary(summary[t], t, out_dir / f"{t}_seeds.png")
    metrics["total_s"] = time.perf_counter() - t_start
    metrics["machine"]["load_average_end"] = load_average()
    metrics = strict_json(metrics)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def run_seed(out_dir: Path, data: str | Path | None, seed: int, tasks: Sequence[str], rounds: int | None,
             samples: int | None, cfm_steps: int, pretrain_steps: int, max_rows: int | None,
             log: Callable[[str], None], show_progress: bool, crystal_kwargs: dict[str, Any] | None = None,
             device: str = "cpu") -> dict[str, Any]:
    """One seed of the benchmark: every task and variant; writes ``out_dir/metrics.json`` and the plots."""
    from flowevo.benchmarks.constrained_plots import plot_frontier, plot_synthetic_samples
    from flowevo.report.cfo_rounds import plot_rounds

    out_dir.mkdir(parents=True, exist_ok=True)
    configs = default_configs(seed, rounds, samples)
    metrics: dict[str, Any] = {
        "seed": seed,
        "multiplier_units": "reward standard deviations (of the pretrained samples) per unit of the penalty: the "
                            "smoothed violation indicator sigmoid((g - bound) / (0.1 * pretrained std of g)), "
                            "averaged over the sample's nearest neighbours in flow space where CFOConfig.neighbours > 1",
        "kl_or_distance_to_pretrained": "KL(p_round || p_pretrained) in nats, Monte Carlo over fresh samples with "
                                        "exact flow log-densities (2-D: exact divergence; crystals, 22-D latent: "
                                        "Hutchinson estimator), rk4 with 10 steps",
        "tasks": {}, "bars": {}, "setup": {},
    }
    if "synthetic" in tasks:
        t0 = time.perf_counter()
        task = SyntheticTask()
        log("synthetic: pretraining the 2-D flow")
        model = task.pretrain(seed, steps=pretrain_steps, device=device)
        cfg = configs["synthetic"]
        res = run_variants(model, task.evaluator(), Condition.from_labels([0]), cfg, out_dir / "checkpoints" / "synthetic",
                           meta={"task": "synthetic"}, log=log, show_progress=show_progress)
        tm = task_metrics(res)
        alphas = list(np.geomspace(8.0, 0.08, 40))
        constrained = optimum_frontier(task, cfg.max_violation, alphas, seed=seed + 99)
        free = optimum_frontier(task, None, alphas, seed=seed + 99)
        for name, m in tm.items():
            ref = free if name == "unconstrained" else constrained
            m["optimum_reward_at_same_kl"] = frontier_reward_at(ref, m["kl_or_distance_to_pretrained"])
        metrics["tasks"]["synthetic"] = tm
        metrics["setup"]["synthetic"] = {
            "p0": {"centres": [list(c) for c in task.centres], "sd": task.sigma}, "reward": f"-|x - {list(task.target)}|",
            "constraint": f"x_0 <= {task.bound}", "hard_constrained_optimum": task.hard_optimum(),
            "unconstrained_optimum": {"point": list(task.target), "reward": 0.0},
            "config": asdict(cfg), "frontier_constrained": constrained, "frontier_unconstrained": free,
            "optimum_reward_at_same_kl": "the exact optimum of max E[r] - alpha KL(p||p0) s.t. violation rate <= "
                                         "max_violation (unconstrained variant: no constraint) at the variant's KL",
            "wall_s": time.perf_counter() - t0,
        }
        metrics["bars"]["synthetic"] = bar_check("synthetic", tm, cfg.samples)
        plot_rounds(tm, "synthetic", out_dir / "synthetic_rounds.png", BARS["synthetic"], 1 - cfg.max_violation)
        samples_by_variant = {"pretrained": res["cfo"].pretrained, **{k: r.model for k, r in res.items()}}
        plot_synthetic_samples(task, samples_by_variant, out_dir / "synthetic_samples.png", seed)
        plot_frontier(constrained, free, tm, out_dir / "synthetic_frontier.png")
    if "crystals" in tasks:
        t0 = time.perf_counter()
        from flowevo.domains.crystals.diversity import composition_key
        from flowevo.domains.crystals.objectives import structure_projection

        setup = CrystalSetup(data, seed, cfm_steps=cfm_steps, max_rows=max_rows, log=log, **(crystal_kwargs or {}))
        cfg = configs["crystals"]
        log("crystals: fine-tuning variants")
        res = run_variants(setup.model.velocity, setup.evaluator, None, cfg, out_dir / "checkpoints" / "crystals",
                           encoder=setup.model.encoder, payload=setup.payload, meta=setup.model.meta(), log=log,
                           show_progress=show_progress, monitor=setup.monitor, diversity_key=composition_key,
                           project=structure_projection(setup.model.representation), projected=("cfo",))
        tm = task_metrics(res)
        tm["pretrained"]["samples"] = setup.sample_figures(res["cfo"].pretrained, cfg.samples, seed + 7)
        for name, r in res.items():
            tm[name]["samples"] = setup.sample_figures(r.model, cfg.samples, seed + 7)
        metrics["tasks"]["crystals"] = tm
        metrics["setup"]["crystals"] = {
            "data": str(data), "train_rows": len(setup.train), "held_out_rows": len(setup.held),
            "reward": "surrogate ind_gap (MLP on composition descriptors, fitted on the training split), eV",
            "judge": "independent ind_gap predictor (gradient boosting on the same descriptors, another seed; "
                     "evaluation only, never in fine-tuning), eV",
            "dft": "DFT ind_gap of the sample's composition where the Perov-5 CSV (all rows) labels it, eV",
            "surrogate_held_out": setup.surrogate_quality(),
            "constraints": {"smact_strict": "SMACT charge neutrality + Pauling test, oxidation_states_set='pymatgen_sp'",
                            "formation_energy": f"CHGNet energy/atom minus per-element references fitted on "
                                                f"{setup.chgnet_rows} training crystals <= {setup.ceiling:.4f} eV/atom "
                                                f"(the training median of heat_ref)"},
            "ceiling_ev_per_atom": setup.ceiling, "condition": "null (unconditional samples of the heat_ref CFM)",
            "cfm_steps": cfm_steps, "config": asdict(cfg),
            "chgnet_ms_per_structure": setup.formation.energy.ms_per_structure,
            "wall_s": time.perf_counter() - t0,
        }
        metrics["bars"]["crystals"] = bar_check("crystals", tm, cfg.samples)
        plot_rounds(tm, "crystals", out_dir / "crystals_rounds.png", BARS["crystals"], 1 - 2 * cfg.max_violation)
    write_json(out_dir / "metrics.json", metrics)
    return metrics
