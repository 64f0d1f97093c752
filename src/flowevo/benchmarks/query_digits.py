"""Query efficiency on the digits counterfactual task: the digits benchmark's own methods, counted.

Each method runs through the public :class:`~flowevo.domains.digits.counterfactuals.DigitCounterfactuals`
methods (``reo``, ``search("cma")``, ``search("random")``) with the digits benchmark's settings. Every
evaluator those methods build is wrapped in a :class:`~flowevo.objectives.QueryCounter` through the
task's ``wrap_evaluator`` argument (a run that builds none is an error, never a silent zero).

Goals (judged here, independently of the method's own objectives where possible):

- ``valid``: the black box's (CNN's) label is the target with probability >= tau;
- ``close``: valid, and the benchmark's preservation objective (its first objective, e.g. the
  shape distance to the source's reconstruction) at most the median of that same measure over
  LeapFactual's valid edits (gamma 0.5) on a development split (training digits 1000-1099,
  never the benchmark sources): "a valid edit at least as close as a typical leap edit".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from flowevo.benchmarks.query_efficiency import _defaults_of
from flowevo.domains.digits.counterfactuals import KEPT_MARGIN, DigitCounterfactuals
from flowevo.evolve import hypervolume, slerp_ladder
from flowevo.objectives import Candidates, Evaluation, Goal, QueryCounter, sense_sign

DEV = slice(1000, 1100)
DEV_SETTINGS = {  # REO before pre-screening: name: (individuals per row, ladder seeds); the benchmark's budget
    "reo_pop8": (8, False), "reo_ladder": (24, True), "reo_pop8_ladder": (8, True),
}


class Validity:
    """``(evaluation, candidates) -> (N,)`` bool: the black box labels the candidate as its target with p >= tau.

    Asks its own :class:`ClassifierOracle` on the same classifier (so the method's query counter is
    untouched); remembers the last batch, so several goals built on it cost one classifier pass."""

    def __init__(self, classifier: torch.nn.Module, tau: float) -> None:
        from flowevo.domains.digits.objectives import ClassifierOracle

        self.oracle, self.tau = ClassifierOracle(classifier), tau
        self._last: tuple[Candidates | None, Tensor | None] = (None, None)

    def __call__(self, ev: Evaluation, c: Candidates) -> Tensor:
        if self._last[0] is not c:
            p = self.oracle.probs(c.x)
            t = c.target.labels.cpu()
            self._last = (c, (p.argmax(1) == t) & (p.gather(1, t[:, None]).squeeze(1) >= self.tau))
        return self._last[1]


def digit_goals(classifier: torch.nn.Module, tau: float, threshold: float) -> dict[str, Goal]:
    """``valid`` and ``close`` (valid, first objective <= ``threshold``)."""
    valid = Validity(classifier, tau)
    return {"valid": valid, "close": lambda ev, c: valid(ev, c) & (ev.values[:, 0] <= threshold)}


def _counting_run(make: Callable[..., DigitCounterfactuals], run: Callable, goals: dict[str, Goal]
                  ) -> tuple[dict, list[QueryCounter]]:
    """``run(task)`` on ``task = make(wrap_evaluator=...)``: every evaluator the task builds is counted."""
    counters: list[QueryCounter] = []

    def counted(evaluator) -> QueryCounter:
        counters.append(QueryCounter(evaluator, len(task.x), goals))
        return counters[-1]

    task = make(wrap_evaluator=counted)
    result = run(task)
    if not counters:
        raise RuntimeError("the method built no evaluator: queries cannot be counted")
    return result, counters


def hypervolume_at(counters: Sequence[QueryCounter], sign: Tensor, reference: Tensor, at: Sequence[int]
                   ) -> dict[str, list[float]]:
    """Per row, the hypervolume (pymoo) of its feasible points among its first ``e`` evaluations, for each ``e`` in
    ``at``: ``{str(e): [rows values]}``. ``sign (M,)`` turns the raw objectives into minimisation form; ``reference (M,)`` is
    in that form. Several counters (several evaluators of one method) are concatenated in order."""
    rows, offset, parts = len(counters[0].spent), torch.zeros(len(counters[0].spent), dtype=torch.long), []
    for c in counters:
        pts = c.scored()
        parts.append((pts.row, pts.position + offset[pts.row], pts.values, pts.feasible))
        offset = offset + c.spent
    row, pos, values, feasible = (torch.cat(t) for t in zip(*parts))
    F = values * sign
    ok = feasible & torch.isfinite(F).all(1)
    return {str(e): [hypervolume(F[ok & (pos <= e) & (row == b)], reference) for b in range(rows)] for e in at}


def leap_threshold(models, population: int, generations: int, tau: float, seed: int = 0, dev: slice = DEV) -> dict:
    """The ``close`` goal's threshold: median of the benchmark's preservation objective over leap's valid dev edits."""
    from flowevo.domains.digits.data import images_to_tensor, load_builtin_digits

    split = load_builtin_digits()
    x = images_to_tensor(split.train_images[dev])
    labels = torch.as_tensor(split.train_labels[dev], dtype=torch.long)
    targets = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(seed))
    cf = DigitCounterfactuals(models, x, labels, targets, seed, population, generations)
    edits = cf.leap(0.5).best.decoded
    evaluator = cf.evaluator(tau)
    cands = Candidates(x=edits, source_index=torch.arange(len(x), device=edits.device), sources=cf.x, target=cf.tgt_c)
    ev = evaluator(cands)
    valid = Validity(models.classifier, tau)(ev, cands)
    name = evaluator.objectives[0].name
    return {"threshold": float(ev.values[valid, 0].median()), "objective": name,
            "dev_rows": f"training digits {dev.start}-{dev.stop - 1}", "leap_gamma": 0.5,
            "leap_valid_rate": float(valid.double().mean())}


HV_AT = (16, 32, 64, 128, 256, 384)


def hv_reference(threshold: float, tau: float) -> Tensor:
    """The digits two-objective task's hypervolume reference in minimisation form ``(shape distance, -p_target)``:
    twice the ``close`` threshold and the confidence ``tau`` (fixed before any run; points beyond it add nothing)."""
    return torch.tensor([2.0 * threshold, -tau], dtype=torch.float64)


def run_methods(x: Tensor, labels: Tensor, seeds: Sequence[int], methods: dict[str, Callable], models,
                population: int, generations: int, goals: dict[str, Goal], log: Callable[[str], None],
                preservation: str | None = None, rows: dict[str, int] | None = None,
                reference: Tensor | None = None, hv_at: Sequence[int] = HV_AT) -> tuple[dict, dict, dict]:
    """Per seed and method: per-row first successes per goal, the method's final scores, its evaluator's names.

    ``preservation``: the objective name every method's first objective must have (the ``close`` goal's measure).
    ``rows``: methods run on the first that many sources only (e.g. an expensive baseline).
    ``reference``: with it, each method's final scores also hold the hypervolume of each row's feasible points
    after each of ``hv_at`` evaluations (``hypervolume_rows``, see :func:`hypervolume_at`) and its mean over rows
    (``hypervolume``). Every final score holds the method's
    wall time and its seconds per evaluation spent outside the black box."""
    first: dict[str, dict[str, list]] = {g: {m: [] for m in methods} for g in goals}
    final: dict[str, list[dict]] = {m: [] for m in methods}
    names: dict[str, dict] = {}
    rows = rows or {}
    for seed in seeds:
        targets = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(seed))
        for m, run in methods.items():
            k = min(rows.get(m, len(x)), len(x))
            make = lambda k=k, **kw: DigitCounterfactuals(models, x[:k], labels[:k], targets[:k], seed, population,  # noqa: B023
                                                          generations, **kw)
            log(f"digits seed {seed}: {m}" + (f" (first {k} sources)" if k < len(x) else ""))
            start = time.perf_counter()
            r, counters = _counting_run(make, run, goals)
            wall = time.perf_counter() - start
            spent = sum(c.spent for c in counters)
            for g in goals:
                first[g][m].append(torch.stack([c.first[g] + (sum(d.spent for d in counters[:i]) if i else 0)
                                                for i, c in enumerate(counters)]).min(dim=0).values.tolist())
            names.setdefault(m, {"evaluators": len(counters), "evaluations_per_row": float(spent.double().mean()),
                                 "objectives": [o.name for o in counters[0].objectives],
                                 "constraints": [c.name for c in counters[0].constraints], "rows": k})
            if preservation is not None and names[m]["objectives"][0] != preservation:
                raise ValueError(f"{m}'s first objective is {names[m]['objectives'][0]!r}, but the close goal's "
                                 f"threshold is in {preservation!r}")
            scores = {key: v for key, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            total = float(spent.sum())
            scores |= {"wall_s": wall, "outside_s_per_evaluation": (wall - sum(c.inner_s for c in counters)) / max(total, 1.0)}
            if reference is not None:
                per_row = hypervolume_at(counters, sense_sign(counters[0].objectives), reference, hv_at)
                scores |= {"hypervolume": {e: sum(v) / len(v) for e, v in per_row.items()}, "hypervolume_rows": per_row}
            final[m].append(scores)
    return first, final, names


def kept_scores(tau: float, method: Callable[[DigitCounterfactuals], object]) -> Callable[[DigitCounterfactuals], dict]:
    """Run ``method`` on a task and score its kept edits as the digits benchmark does: REO's by its default rule
    (:meth:`DigitCounterfactuals.kept`: the least-changed edit at ``tau``, preferring those the flow reads as the
    target); the others' best (the least-changed edit at ``tau``). Every method's edits are also scored under the
    other rule: ``*_plain`` (no flow reading) and ``*_flow`` (flow reading) keys."""

    def run(cf: DigitCounterfactuals) -> dict:
        res = method(cf)
        plain = cf.kept(res, tau, flow_margin=None)[0]
        flow = cf.kept(res, tau, flow_margin=KEPT_MARGIN)[0]
        scores = {"plain": cf.score(plain), "flow": cf.score(flow)}
        own = scores["flow" if res.method == "reo" else "plain"]
        extra = {f"{k}_{rule}": scores[rule][k] for rule in scores for k in ("acc", "acc_independent", "morph_mean")}
        return {**own, **extra, "evaluations": float(res.evaluations_per_row.mean())}

    return run


QUERY_METHODS = ("reo", "cma", "random", "nsga2", "bo")
BO_ROWS = 50  # Bayesian optimisation runs on the first 50 sources (a GP per source is the slowest method here)


BASELINE_SETTINGS = {  # tuned on the development split (training digits 1000-1099, targets from seed 100 or 100-101):
    "cma": {"popsize": 4, "sigma0": 0.3},  # populations 4 / 8 / 24 at 0.3: to 50% of sources 9 / 10 / 21 evaluations
    "nsga2": {"popsize": 8, "sigma0": 0.5},  # (8, 0.3) / (24, 0.3) / (8, 0.5): 26 / 15 / 9
    "bo": {"batch": 4, "length_init": 0.4},  # initial trust region 0.8 (TuRBO's default) / 0.4: 9 / 7
    "random": {},  # batches of the task's population (24)
}


def benchmark_methods(tau: float, names: Sequence[str] = QUERY_METHODS) -> dict[str, Callable]:
    """The query benchmark's methods: REO (the library default), CMA-ES, random search, NSGA-II and BO (TuRBO-style,
    ParEGO-style Thompson sampling on both objectives) at :data:`BASELINE_SETTINGS`, each scored on its kept edits."""
    known = {"reo": lambda cf: cf.reo(tau), **{m: (lambda cf, m=m: cf.search(m, tau, **BASELINE_SETTINGS[m]))
                                                 for m in BASELINE_SETTINGS}}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown query methods {unknown}; use some of {list(known)}")
    return {n: kept_scores(tau, known[n]) for n in names}


def run_digits_queries(seeds: Sequence[int], n: int = 200, tau: float = 0.9,
                       log: Callable[[str], None] = lambda s: None, device: str = "cpu", sources: str | None = None,
                       methods: Sequence[str] = QUERY_METHODS, bo_rows: int = BO_ROWS) -> dict:
    """The digits benchmark's sources (or the first ``n`` of a user ``.npz``), targets (per seed) and methods; first
    successes per goal, kept-edit quality, hypervolume per source after 64/128/256/384 evaluations."""
    from flowevo.domains.digits.data import load_source_digits
    from flowevo.domains.digits.models import load_digit_models

    population, generations = _defaults_of("flowevo.benchmarks.digits", "run_digits_benchmark", "population", "generations")
    models = load_digit_models(device=device)
    close = leap_threshold(models, population, generations, tau)
    x, labels = load_source_digits(sources, n)
    reference = hv_reference(close["threshold"], tau)
    first, final, names = run_methods(x, labels, seeds, benchmark_methods(tau, methods), models, population, generations,
                                       digit_goals(models.classifier, tau, close["threshold"]), log, close["objective"],
                                       rows={"bo": bo_rows}, reference=reference)
    return {"budget": population * (generations + 1), "population": population, "generations": generations,
            "rows": len(x), "sources": sources or "built-in held-out digits", "tau": tau, "close": close,
            "hypervolume": {"objectives": ["shape_distance (min)", "p_target (max)"], "at": list(HV_AT),
                            "reference_min_form": reference.tolist(),
                            "what": "mean over sources of the hypervolume of each source's feasible points among its "
                                    "first e evaluations; reference (2 x close threshold, p_target = tau)"},
            "evaluators": names, "goals": first, "final": final}


def reo_setting(tau: float, population: int, ladder: bool) -> Callable:
    """REO as it was before pre-screening (no screening, the target anchor as the extra seed) with another
    population size (same budget: more generations) and, with ``ladder``, the slerp ladder from the target
    anchor toward the source's own residual (anchor first) as extra seeds."""

    def method(cf: DigitCounterfactuals):
        seeds = cf.target_seeds
        if ladder:
            with torch.inference_mode():
                seeds = slerp_ladder(cf.target_seeds[:, 0], cf.codec.invert(cf.x, cf.src_c))
        return cf.reo(tau, population=population, extra_seeds=seeds, prescreen=1)

    return kept_scores(tau, method)


def run_on_training_digits(methods: dict[str, Callable], seeds: Sequence[int] = (100, 101), tau: float = 0.9,
                           rows: slice = DEV, log: Callable[[str], None] = lambda s: None, device: str = "cpu",
                           hypervolume: bool = True) -> dict:
    """The query benchmark's goals, counting and hypervolume on training digits ``rows`` (a development split,
    never the benchmark's held-out sources): ``{"close", "rows", "first", "final", "evaluators"}`` as
    :func:`run_methods` returns them. The ``close`` threshold always comes from :data:`DEV`'s leap edits, so
    that every development split is held to the same goal; ``hypervolume``: also score each method's
    hypervolume against :func:`hv_reference`."""
    from flowevo.domains.digits.data import load_training_digits
    from flowevo.domains.digits.models import load_digit_models

    population, generations = _defaults_of("flowevo.benchmarks.digits", "run_digits_benchmark", "population", "generations")
    models = load_digit_models(device=device)
    close = leap_threshold(models, population, generations, tau, dev=DEV)
    x, labels = load_training_digits(rows)
    first, final, names = run_methods(x, labels, seeds, methods, models, population, generations,
                                       digit_goals(models.classifier, tau, close["threshold"]), log, close["objective"],
                                       reference=hv_reference(close["threshold"], tau) if hypervolume else None)
    return {"close": close, "rows": f"training digits {rows.start}-{rows.stop - 1}", "first": first, "final": final,
            "evaluators": names}


def run_dev_settings(seeds: Sequence[int] = (100, 101), tau: float = 0.9,
                     log: Callable[[str], None] = lambda s: None, device: str = "cpu") -> dict:
    """REO settings against CMA-ES and random search on the development split (never the benchmark sources)."""
    population, generations = _defaults_of("flowevo.benchmarks.digits", "run_digits_benchmark", "population", "generations")
    base = benchmark_methods(tau, ("reo", "cma", "random"))
    methods = {"reo": base["reo"], "reo_before": reo_setting(tau, 24, False),
               **{k: reo_setting(tau, *v) for k, v in DEV_SETTINGS.items()},
               "cma": base["cma"], "random": base["random"]}
    run = run_on_training_digits(methods, seeds, tau, DEV, log, device, hypervolume=False)
    return {"budget": population * (generations + 1), "rows": DEV.stop - DEV.start, "dev_rows": run["close"]["dev_rows"],
            "tau": tau, "settings": {k: dict(zip(("population", "ladder"), v)) for k, v in DEV_SETTINGS.items()},
            "close": run["close"], "evaluators": run["evaluators"], "goals": run["first"], "final": run["final"],
            "seeds": list(seeds)}
