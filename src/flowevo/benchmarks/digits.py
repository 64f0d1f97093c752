"""Digits counterfactual benchmark (LeapFactual protocol), all methods on the same models.

Each source gets a uniformly random target class (about 10% equal the source). Methods:
``reo`` (self- and cross-pollination; per digit a Pareto set of shape distance to the
source's reconstruction vs the black box's target probability, among edits it labels as the
target with probability >= tau; the reported edit at tau is the least-changed one kept),
``leap`` (lift/land), ``gradient`` (white-box latent optimisation), ``cma`` (CMA-ES in
residual space) and ``random`` (random residuals), both minimising the same shape distance
under the same constraint, ``swap`` (the source residual decoded under the target once).
Morphology change is measured against the VAE reconstruction of the source.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from flowevo.baselines import cma_search, gradient_search, leap, random_search
from flowevo.domains.digits.data import images_to_tensor, load_builtin_digits, load_digits_npz
from flowevo.domains.digits.metrics import diversity, morph_mean, morph_rel_change, slant_abs_change
from flowevo.domains.digits.models import DigitModels, load_digit_models
from flowevo.domains.digits.morphometrics import measure_batch
from flowevo.domains.digits.objectives import (ClassifierOracle, counterfactual_objectives, shape_distance,
                                               target_confidence_constraint)
from flowevo.evolve import EditTask, EvolutionResult, Evolver, MaxGenerations, Variation, non_dominated
from flowevo.flow import Condition, FixedGrid
from flowevo.objectives import LocalEvaluator

LEAP_GAMMAS = (0.05, 0.1, 0.3, 0.5, 1.0)
REO_TAUS = (0.5, 0.7, 0.9, 0.95)
STEPS = 5  # rk4 steps of every method's codec (round-trip relative latent error ~6e-4 on the test digits)
CROSS_RATE = 0.3
LEAP_DEFAULT, REO_DEFAULT = 0.5, 0.9
FRONT_KEYS = ("acc", "mean_p_target", "acc_independent", "morph_mean")


def load_sources(path: str | Path | None, n: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` digits of a user ``.npz`` (or of the builtin held-out split): ``(n, 28, 28)`` in [0, 1], labels."""
    if path is None:
        split = load_builtin_digits()
        images, labels = split.test_images, split.test_labels
    else:
        images, labels = load_digits_npz(path)
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    return images_to_tensor(images[:n]), torch.as_tensor(labels[:n], dtype=torch.long)


class DigitsBench:
    """Shared state of one benchmark run: models, sources, targets, references and oracles.

    Every method decodes with the same codec (rk4, :data:`STEPS` fixed steps).
    """

    def __init__(self, models: DigitModels, x: Tensor, labels: Tensor, targets: Tensor, seed: int,
                 population: int, generations: int) -> None:
        self.models, self.x, self.labels, self.targets, self.seed = models, x, labels, targets, seed
        self.population, self.generations = population, generations
        self.codec = models.codec(FixedGrid("rk4", STEPS))
        self.oracle = ClassifierOracle(models.classifier)
        self.judge = ClassifierOracle(models.independent)
        self.src_c, self.tgt_c = Condition.from_labels(labels), Condition.from_labels(targets)
        with torch.inference_mode():
            self.recon = models.vae(x)
            self.target_seeds = self.codec.invert(x, self.tgt_c)[:, None]  # decodes to ~the source under the target
        self.m_ref = measure_batch(self.recon.numpy())
        self.task = EditTask(x, self.src_c, self.tgt_c)

    def evaluator(self, tau: float) -> LocalEvaluator:
        """Shape distance to the source reconstruction (min; the first objective, the only one
        CMA-ES and random search rank by) and the black box's target probability (max), under
        the confidence constraint at ``tau``."""
        return LocalEvaluator(counterfactual_objectives(self.recon, self.oracle),
                              [target_confidence_constraint(self.oracle, tau)])

    def score(self, edits: Tensor, kept: list[Tensor] | None, evaluations: float, wall_s: float) -> dict:
        """Metrics of the kept edit per source ``(N, 28, 28)``; ``kept`` = all solutions kept per source.

        The edits are remembered as ``self.last_edits`` (for ``edits.npz``)."""
        self.last_edits = edits
        p = ClassifierOracle(self.models.classifier).probs(edits)
        p_ind = ClassifierOracle(self.models.independent).probs(edits)
        m = measure_batch(edits.numpy())
        rel = morph_rel_change(m, self.m_ref)
        return {
            "acc": float((p.argmax(1) == self.targets).double().mean()),
            "acc_independent": float((p_ind.argmax(1) == self.targets).double().mean()),
            "mean_p_target": float(p.gather(1, self.targets[:, None]).mean()),
            "morph_rel_change": rel, "morph_mean": morph_mean(rel),
            "slant_abs_change": slant_abs_change(m, self.m_ref),
            "shape_distance": float(shape_distance(edits, self.recon).mean()),
            "diversity": diversity(kept) if kept is not None else {"pixel": None, "morpho": None, "sources_with_several": 0},
            "evaluations": float(evaluations), "wall_s": wall_s,
        }

    # -- methods -------------------------------------------------------------------------------
    def reo_run(self, tau: float, cross_rate: float = CROSS_RATE, seed: int | None = None,
                same_target_donors: bool = True, show_progress: bool = False) -> EvolutionResult:
        """One REO run: per digit a Pareto set of (shape distance min, target probability max) among
        edits the black box labels as the target with probability >= ``tau``. Cross-pollination
        donors come from digits with the same target class (``same_target_donors``) or any digit."""
        evolver = Evolver(self.codec, self.task, self.evaluator(tau), population_size=self.population,
                          variation=Variation(cross_rate=cross_rate, donor_groups=self.targets if same_target_donors else None),
                          termination=[MaxGenerations(self.generations)],
                          seed=self.seed if seed is None else seed, extra_seeds=self.target_seeds)
        return evolver.run(show_progress=show_progress)

    def pick(self, res: EvolutionResult, tau: float) -> tuple[Tensor, list[Tensor]]:
        """Per digit the least-changed survivor with target probability >= ``tau`` ``(N, 28, 28)``
        (where none reaches ``tau``: the most confident, least violating one), and the kept
        solutions: the Pareto set (shape distance vs target probability) of the survivors with
        target probability >= ``tau``, ``(K_b, 28, 28)`` per digit."""
        pop = res.population
        row, ok = pop.row.cpu(), pop.feasible & (pop.values[:, 1] >= tau)
        key = torch.where(ok, pop.values[:, 0], 1e12 + (1 - pop.values[:, 1]) + pop.violation)
        key = torch.nan_to_num(key, nan=math.inf)
        decoded, kept, best = pop.decoded.cpu(), [], []
        for b in range(res.rows):
            mine = torch.nonzero(row == b).flatten()
            best.append(mine[torch.argmin(key[mine])])
            mine = mine[ok[mine]]
            kept.append(decoded[mine[non_dominated(pop.values[mine] * torch.tensor([1.0, -1.0], dtype=torch.float64))]])
        return decoded[torch.stack(best)], kept

    def reo_front(self, taus: Sequence[float], cross_rate: float = CROSS_RATE, seed: int | None = None,
                  same_target_donors: bool = True, diversity_at: float | None = REO_DEFAULT) -> dict[float, dict]:
        """One REO run under the lowest ``tau``; the least-changed kept edit at each ``tau``: ``{tau: metrics}``.

        Diversity (morphometrics of every kept solution: the slow part) only at ``diversity_at``
        (and at the only tau when there is one)."""
        start = time.perf_counter()
        res = self.reo_run(min(taus), cross_rate, seed, same_target_donors)
        wall = time.perf_counter() - start
        out = {}
        for tau in sorted(taus):
            edits, kept = self.pick(res, tau)
            keep = kept if tau == diversity_at or len(taus) == 1 else None
            out[tau] = self.score(edits, keep, res.evaluations / len(self.x), wall)
            out[tau]["edits"] = edits
        return out

    def reo(self, tau: float = 0.9, cross_rate: float = CROSS_RATE, seed: int | None = None) -> dict:
        """REO at one confidence threshold (its own run)."""
        r = self.reo_front([tau], cross_rate, seed)[tau]
        self.last_edits = r.pop("edits")
        return r

    def leap(self, gamma: float = 0.5) -> dict:
        res = leap(self.codec, self.x, self.labels, self.targets, self.oracle.labels, gamma=gamma, rounds=15)
        return self.score(res.x.cpu(), None, float(res.queries.double().mean()), res.wall_s)

    def gradient(self, tau: float = 0.9, steps: int = 1000) -> dict:
        vae, clf = self.models.vae, self.models.classifier
        with torch.inference_mode():
            z0 = vae.encode(self.x)
        tgt = self.targets
        probs = lambda x: torch.softmax(clf(x), dim=1).gather(1, tgt[:, None]).squeeze(1)
        res = gradient_search(z0.clone(), vae.decode, lambda x: F.cross_entropy(clf(x), tgt, reduction="none"),
                              lambda x: probs(x) >= tau, steps=steps, lr=0.05, weight=0.01)
        return self.score(res.x.cpu(), None, float(res.steps.double().mean()), res.wall_s)

    def search(self, fn: Callable, tau: float = 0.9) -> dict:
        budget = self.population * (self.generations + 1)
        start = time.perf_counter()
        if fn is cma_search:
            res = cma_search(self.codec, self.task, self.evaluator(tau), budget, popsize=self.population,
                             sigma0=0.3, seed=self.seed)
        else:
            res = random_search(self.codec, self.task, self.evaluator(tau), budget, batch=self.population, seed=self.seed)
        return self.score(res.best_x.cpu(), None, res.evaluations_per_row, time.perf_counter() - start)

    def swap(self) -> dict:
        start = time.perf_counter()
        with torch.inference_mode():
            edits = self.codec.decode(self.codec.invert(self.x, self.src_c), self.tgt_c)
        return self.score(edits.cpu(), None, 0.0, time.perf_counter() - start)

    def fidelity(self) -> dict:
        from sklearn.linear_model import LogisticRegression

        split = load_builtin_digits()
        n = 2000
        xt, yt = images_to_tensor(split.train_images[:n]), torch.as_tensor(split.train_labels[:n], dtype=torch.long)
        with torch.inference_mode():
            r_train = self.codec.invert(xt, Condition.from_labels(yt)).numpy()
            r_test = self.codec.invert(self.x, self.src_c).numpy()
            roundtrip = float(self.codec.roundtrip_error(self.x, self.src_c).mean())
            z_train = self.models.vae.encode(xt).numpy()
            z_test = self.models.vae.encode(self.x).numpy()
        probe = LogisticRegression(max_iter=2000).fit(r_train, yt.numpy())
        latent_probe = LogisticRegression(max_iter=2000).fit(z_train, yt.numpy())
        return {
            "residual_class_probe_acc": float(probe.score(r_test, self.labels.numpy())),
            "latent_class_probe_acc": float(latent_probe.score(z_test, self.labels.numpy())),
            "roundtrip_rel_error": roundtrip,
        }


def plot_fronts(metrics: dict, path: Path | str) -> Path:
    """Morphology change against mean target probability (left) and independent ACC (right):
    leap over gamma, REO over tau."""
    import matplotlib.pyplot as plt

    from flowevo.report.plots import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, label in ((axes[0], "mean_p_target", "mean target probability (black box)"),
                           (axes[1], "acc_independent", "ACC of the independent classifier")):
        for name, marker in (("leap", "o"), ("reo", "s")):
            pts = metrics["fronts"][name]
            ax.plot([p[key] for p in pts], [p["morph_mean"] for p in pts], marker=marker, label=name)
            for i, p in enumerate(pts):
                offset = (3, 3) if name == "leap" else (-6 + 10 * (i % 2), -11 - 7 * (i % 2))
                ax.annotate(f"{p['setting']:g}", (p[key], p["morph_mean"]), fontsize=7,
                            textcoords="offset points", xytext=offset, color=f"C{0 if name == 'leap' else 1}")
        ax.set(xlabel=label)
        ax.grid(alpha=0.3)
    if "no_edit" in metrics:
        ne = metrics["no_edit"]
        low = min(metrics["fronts"]["reo"], key=lambda r: r["mean_p_target"])
        axes[0].plot([ne["mean_p_target"], low["mean_p_target"]], [ne["morph_mean"], low["morph_mean"]], ls="--",
                     color="C1", alpha=0.6, label="REO on a share of digits, rest unedited")
        axes[0].plot([ne["mean_p_target"]], [ne["morph_mean"]], marker="x", color="grey", ls="", label="no edit")
    axes[0].set(ylabel="mean relative morphology change")
    axes[0].legend()
    fig.suptitle(f"fronts on {metrics['n_sources']} digits (labels: leap gamma / REO tau; lower right is better)", fontsize=10)
    return save_figure(fig, path)


def plot_examples(bench: DigitsBench, edits: dict[str, Tensor], path: Path | str, k: int = 8) -> Path:
    """Image grid of the first ``k`` sources: source, reconstruction and each method's edit,
    captioned with the black box's label and probability."""
    from flowevo.report import image_grid

    k = min(k, len(bench.x))
    cols = {"source": bench.x[:k], "reconstruction": bench.recon[:k], **{name: e[:k] for name, e in edits.items()}}
    caption = lambda im: [f"{int(c)} ({p:.2f})" for p, c in zip(*bench.oracle.probs(im).max(dim=1))]
    return image_grid({name: v.numpy() for name, v in cols.items()}, path,
                      row_labels=[f"{int(a)} -> {int(b)}" for a, b in zip(bench.labels[:k], bench.targets[:k])],
                      cell_labels={name: caption(v) for name, v in cols.items() if name != "source"},
                      title="digit -> target; captions: black-box label (probability)")


# variant -> (cross rate, donors from digits with the same target class)
def compare_fronts(fronts: dict, no_edit: dict | None = None) -> list[dict]:
    """For each leap point: REO's least morphology change among its points at least as confident
    (mean target probability >= leap's), and whether it is lower (None: REO has no such point).

    With ``no_edit`` (the unedited reconstructions' mean target probability and morphology
    change), also the mixture "REO's least confident edit on a random share f of the digits,
    the rest unedited" at leap's mean target probability (``reo_mix_morph``): where leap's point
    lies below every REO point in confidence, that is how REO reaches the same confidence.
    """
    out = []
    low = min(fronts["reo"], key=lambda r: r["mean_p_target"])
    for lp in fronts["leap"]:
        reo = [r["morph_mean"] for r in fronts["reo"] if r["mean_p_target"] >= lp["mean_p_target"]]
        best = min(reo) if reo else None
        row = {"leap_setting": lp["setting"], "leap_p": lp["mean_p_target"], "leap_morph": lp["morph_mean"],
               "reo_morph_at_p_or_more": best, "reo_lower": None if best is None else best < lp["morph_mean"]}
        if no_edit is not None and no_edit["mean_p_target"] <= lp["mean_p_target"] < low["mean_p_target"]:
            f = (lp["mean_p_target"] - no_edit["mean_p_target"]) / (low["mean_p_target"] - no_edit["mean_p_target"])
            row["reo_mix_share"] = f
            row["reo_mix_morph"] = f * low["morph_mean"] + (1 - f) * no_edit["morph_mean"]
        out.append(row)
    return out


ABLATION = {"self_only": (0.0, True), "cross_only": (1.0, True), "both": (CROSS_RATE, True),
            "both_any_donor": (CROSS_RATE, False)}
SUMMARY_KEYS = ("acc_independent", "mean_p_target", "morph_mean", "shape_distance")


def _summary(runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds of the ablation's headline figures."""
    vals = {k: [r[k] for r in runs] for k in SUMMARY_KEYS}
    vals["diversity_pixel"] = [r["diversity"]["pixel"] for r in runs]
    vals["diversity_morpho"] = [r["diversity"]["morpho"] for r in runs]
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0}
            for k, v in vals.items() if None not in v}


def run_digits_benchmark(out_dir: Path | str, sources: str | Path | None = None, n: int = 200, seed: int = 0,
                         population: int = 24, generations: int = 15, ablation_seeds: int = 2, device: str = "cpu",
                         command: str | None = None, log: Callable[[str], None] = print) -> dict:
    """Run every method and front; write ``out_dir/{metrics.json, edits.npz, fronts.png, examples.png}``.

    The REO front comes from one run (constraint at the lowest tau; at each tau the least-changed
    kept edit with target probability >= tau). The self/cross ablation repeats REO with
    ``ablation_seeds`` seeds per variant (seed, seed + 1, ...) and reports each run and the spread.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    models = load_digit_models(device=device)
    x, labels = load_sources(sources, n)
    targets = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(seed))
    bench = DigitsBench(models, x, labels, targets, seed, population, generations)
    drop = lambda r: {k: v for k, v in r.items() if k != "edits"}

    methods, fronts, edits = {}, {"leap": [], "reo": []}, {}
    for gamma in LEAP_GAMMAS:
        log(f"leap gamma {gamma}")
        r = bench.leap(gamma)
        fronts["leap"].append({"setting": gamma, **{k: r[k] for k in FRONT_KEYS}})
        if gamma == LEAP_DEFAULT:
            methods["leap"], edits["leap"] = r, bench.last_edits
    runs: dict[str, list[dict]] = {name: [] for name in ABLATION}
    for s in range(seed, seed + max(1, ablation_seeds)):
        for name, (rate, same) in ABLATION.items():
            log(f"reo {name} seed {s}")
            front = bench.reo_front(REO_TAUS, cross_rate=rate, seed=s, same_target_donors=same)
            runs[name].append(drop(front[REO_DEFAULT]))
            if name == "both" and s == seed:
                fronts["reo"] = [{"setting": tau, **{k: r[k] for k in FRONT_KEYS}} for tau, r in front.items()]
                methods["reo"], edits["reo"] = drop(front[REO_DEFAULT]), front[REO_DEFAULT]["edits"]
    ablation = {name: {"runs": rs, "summary": _summary(rs), "cross_rate": ABLATION[name][0],
                       "same_target_donors": ABLATION[name][1]} for name, rs in runs.items()}
    for name, run in (("gradient", bench.gradient), ("cma", lambda: bench.search(cma_search)),
                      ("random", lambda: bench.search(random_search)), ("swap", bench.swap)):
        log(name)
        methods[name], edits[name] = run(), bench.last_edits
    no_edit = bench.score(bench.recon, None, 0.0, 0.0)  # the reconstruction itself: where every front starts
    no_edit = {k: no_edit[k] for k in ("acc", "acc_independent", "mean_p_target", "morph_mean")}
    log("fidelity")
    fidelity = bench.fidelity()
    fidelity["swap_morph_rel_change"] = methods["swap"]["morph_mean"]

    metrics = {
        "benchmark": "digits",
        "command": command or (f"flowevo benchmark digits{f' --sources {sources}' if sources else ''} --n {n} "
                               f"--out {out_dir} --seed {seed} --ablation-seeds {ablation_seeds}"),
        "n_sources": len(x), "seed": seed, "population": population, "generations": generations,
        "queries_per_source_reo": population * (generations + 1), "solver": f"rk4, {STEPS} steps",
        "defaults": {"leap_gamma": LEAP_DEFAULT, "reo_tau": REO_DEFAULT},
        "methods": methods, "fronts": fronts, "fronts_comparison": compare_fronts(fronts, no_edit), "ablation": ablation,
        "fidelity": fidelity,
        "no_edit": no_edit,
        "total_s": time.perf_counter() - t0,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "load_average_1m": os.getloadavg()[0]},
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_fronts(metrics, out_dir / "fronts.png")
    plot_examples(bench, edits, out_dir / "examples.png")
    to_u8 = lambda t: (t.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    np.savez_compressed(out_dir / "edits.npz", sources=to_u8(x), source_labels=labels.numpy(), targets=targets.numpy(),
                        reconstructions=to_u8(bench.recon), **{f"edits_{k}": to_u8(v) for k, v in edits.items()})
    return metrics
