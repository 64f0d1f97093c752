"""Digits counterfactual benchmark (LeapFactual protocol), all methods on the same models.

Each source gets a uniformly random target class (about 10% equal the source). Methods:
``reo`` (self- and cross-pollination, feasible = the black box's label is the target with
probability >= tau, ranked by pixel distance to the source's reconstruction), ``leap``
(lift/land), ``gradient`` (white-box latent optimisation), ``cma`` (CMA-ES in residual
space), ``random`` (random residuals), ``swap`` (the source residual decoded under the
target once). Morphology change is measured against the VAE reconstruction of the source.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from flowevo.baselines import cma_search, gradient_search, leap, random_search
from flowevo.domains.digits.data import images_to_tensor, load_builtin_digits, load_digits_npz
from flowevo.domains.digits.metrics import diversity, morph_mean, morph_rel_change, slant_abs_change
from flowevo.domains.digits.models import DigitModels, load_digit_models
from flowevo.domains.digits.morphometrics import measure_batch
from flowevo.domains.digits.objectives import ClassifierOracle, counterfactual_objectives, target_confidence_constraint
from flowevo.evolve import EditTask, Evolver, MaxGenerations, Variation
from flowevo.flow import Condition, FixedGrid
from flowevo.objectives import LocalEvaluator

LEAP_GAMMAS = (0.05, 0.1, 0.3, 0.5, 1.0)
REO_TAUS = (0.5, 0.7, 0.9, 0.95)


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
    """Shared state of one benchmark run: models, sources, targets, references and oracles."""

    def __init__(self, models: DigitModels, x: Tensor, labels: Tensor, targets: Tensor, seed: int,
                 population: int, generations: int) -> None:
        self.models, self.x, self.labels, self.targets, self.seed = models, x, labels, targets, seed
        self.population, self.generations = population, generations
        self.codec = models.codec(FixedGrid("rk4", 10))
        self.oracle = ClassifierOracle(models.classifier)
        self.judge = ClassifierOracle(models.independent)
        self.src_c, self.tgt_c = Condition.from_labels(labels), Condition.from_labels(targets)
        with torch.inference_mode():
            self.recon = models.vae(x)
            self.target_seeds = self.codec.invert(x, self.tgt_c)[:, None]  # decodes to ~the source under the target
        self.m_ref = measure_batch(self.recon.numpy())
        self.task = EditTask(x, self.src_c, self.tgt_c)

    def evaluator(self, tau: float) -> LocalEvaluator:
        return LocalEvaluator(counterfactual_objectives(self.recon), [target_confidence_constraint(self.oracle, tau)])

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
            "diversity": diversity(kept) if kept is not None else {"pixel": None, "morpho": None, "sources_with_several": 0},
            "evaluations": float(evaluations), "wall_s": wall_s,
        }

    # -- methods -------------------------------------------------------------------------------
    def reo(self, tau: float = 0.9, cross_rate: float = 0.3) -> dict:
        start = time.perf_counter()
        evolver = Evolver(self.codec, self.task, self.evaluator(tau), population_size=self.population,
                          variation=Variation(cross_rate=cross_rate), termination=[MaxGenerations(self.generations)],
                          seed=self.seed, extra_seeds=self.target_seeds)
        res = evolver.run()
        pop = res.population
        kept = [pop.decoded[(pop.row == b) & pop.feasible].cpu() for b in range(len(self.x))]
        out = self.score(res.best.decoded.cpu(), kept, res.evaluations / len(self.x), time.perf_counter() - start)
        out["history_best_pixel_distance"] = [h.best[0] for h in res.history]
        out["history_rows_feasible"] = [h.rows_feasible for h in res.history]
        out["failures"] = len(res.failures)
        return out

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
    """Morphology change against mean target probability for leap (over gamma) and REO (over tau)."""
    import matplotlib.pyplot as plt

    from flowevo.report.plots import save_figure

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, marker in (("leap", "o"), ("reo", "s")):
        pts = metrics["fronts"][name]
        ax.plot([p["mean_p_target"] for p in pts], [p["morph_mean"] for p in pts], marker=marker, label=name)
        for p in pts:
            ax.annotate(f"{p['setting']:g}", (p["mean_p_target"], p["morph_mean"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    ax.set(xlabel="mean target probability (black box)", ylabel="mean relative morphology change",
           title=f"fronts on {metrics['n_sources']} digits (labels: gamma / tau)")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def run_digits_benchmark(out_dir: Path | str, sources: str | Path | None = None, n: int = 200, seed: int = 0,
                         population: int = 24, generations: int = 15, device: str = "cpu",
                         log: Callable[[str], None] = print) -> dict:
    """Run every method and front; write ``out_dir/metrics.json`` and ``out_dir/edits.npz``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    models = load_digit_models(device=device)
    x, labels = load_sources(sources, n)
    targets = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(seed))
    bench = DigitsBench(models, x, labels, targets, seed, population, generations)

    methods, fronts, edits = {}, {"leap": [], "reo": []}, {}
    for name, settings, default, run in (("leap", LEAP_GAMMAS, 0.5, bench.leap), ("reo", REO_TAUS, 0.9, bench.reo)):
        for setting in settings:
            log(f"{name} {setting}")
            r = run(setting)
            fronts[name].append({"setting": setting, **{k: r[k] for k in ("mean_p_target", "acc_independent", "morph_mean")}})
            if setting == default:
                methods[name], edits[name] = r, bench.last_edits
    ablation = {"both": methods["reo"]}
    for name, rate in (("self_only", 0.0), ("cross_only", 1.0)):
        log(f"reo ablation {name}")
        ablation[name] = bench.reo(0.9, cross_rate=rate)
    for name, run in (("gradient", bench.gradient), ("cma", lambda: bench.search(cma_search)),
                      ("random", lambda: bench.search(random_search)), ("swap", bench.swap)):
        log(name)
        methods[name], edits[name] = run(), bench.last_edits
    log("fidelity")
    fidelity = bench.fidelity()
    fidelity["swap_morph_rel_change"] = methods["swap"]["morph_mean"]

    metrics = {
        "benchmark": "digits",
        "command": f"flowevo benchmark digits --sources {sources or 'builtin-test'} --n {n} --out {out_dir} --seed {seed}",
        "n_sources": len(x), "seed": seed, "population": population, "generations": generations,
        "queries_per_source_reo": population * (generations + 1),
        "methods": methods, "fronts": fronts, "ablation": ablation, "fidelity": fidelity,
        "total_s": time.perf_counter() - t0,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_fronts(metrics, out_dir / "fronts.png")
    to_u8 = lambda t: (t.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    np.savez_compressed(out_dir / "edits.npz", sources=to_u8(x), source_labels=labels.numpy(), targets=targets.numpy(),
                        reconstructions=to_u8(bench.recon), **{f"edits_{k}": to_u8(v) for k, v in edits.items()})
    return metrics
