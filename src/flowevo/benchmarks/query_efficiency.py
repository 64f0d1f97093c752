"""Query efficiency: black-box evaluations until a goal is reached, REO vs random search vs CMA-ES.

Every method runs exactly as its benchmark runs it (the toy benchmark's ``toy_search``, the
digits benchmark's ``DigitCounterfactuals.reo`` / ``.search``), with its evaluator wrapped in a
:class:`~flowevo.objectives.QueryCounter`. The counter sees every batch of candidates the black
box scores and records, per source row and goal, how many evaluations that row had used when
its first success appeared. Candidates within one batch are counted in batch order (a batch is
proposed before any of its scores are seen, so scoring it one by one and stopping at the first
success is a valid way to spend that many queries).

Goals: on the toy task, the toy benchmark's own success (projection above the 99.9% quantile,
realistic); on the digits task, ``valid`` and ``close`` (see :mod:`flowevo.benchmarks.query_digits`).
"""

from __future__ import annotations

import importlib
import inspect
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from flowevo.benchmarks.machine import load_average, machine_info
from flowevo.jsonio import write_json
from flowevo.objectives import QueryCounter, evaluations_to_rate, success_curve

METHODS = ("reo", "cma", "random")
RATES = (0.5, 0.8, 0.9, 1.0)


def _grid(budget: int) -> list[int]:
    return sorted({int(round(v)) for v in np.geomspace(1, budget, 40)} | {budget})


def _finite(v: float) -> float | None:
    return None if math.isinf(v) else v


def summarise(per_seed: dict[str, list[list[float]]], budget: int, rates: Sequence[float] = RATES) -> dict:
    """Per method: evaluations to each rate per seed, their median / min / max, and median curves.

    ``per_seed[method]`` is a list (one per seed) of per-row first successes. Never reached = None."""
    grid = _grid(budget)
    out: dict = {"grid": grid, "methods": {}}
    for m, seeds in per_seed.items():
        to = {str(r): [evaluations_to_rate(f, r) for f in seeds] for r in rates}
        curves = np.array([success_curve(f, grid) for f in seeds])
        out["methods"][m] = {
            "evaluations_to_rate": {r: [_finite(v) for v in vs] for r, vs in to.items()},
            "median": {r: _finite(statistics.median(vs)) for r, vs in to.items()},
            "min": {r: _finite(min(vs)) for r, vs in to.items()},
            "max": {r: _finite(max(vs)) for r, vs in to.items()},
            "final_rate": [float(np.mean(np.asarray(f) <= budget)) for f in seeds],
            "curve_median": np.median(curves, axis=0).tolist(),
            "curve_min": curves.min(axis=0).tolist(), "curve_max": curves.max(axis=0).tolist(),
        }
    out["ratios"] = _ratios(out["methods"])
    return out


def _ratios(methods: dict) -> dict:
    """For every REO variant (a name starting with ``reo``) and every other method: median evaluations over theirs."""
    return {r: {o: {rate: _ratio(methods[r]["median"][rate], methods[o]["median"][rate]) for rate in methods[r]["median"]}
                for o in methods if not o.startswith("reo")} for r in methods if r.startswith("reo")}


def _ratio(reo: float | None, other: float | None) -> dict:
    """REO's evaluations over another method's; bounds when one never got there within the budget."""
    if reo is None and other is None:
        return {"ratio": None, "note": "neither reached it"}
    if reo is None:
        return {"ratio": None, "note": "only the other method reached it"}
    if other is None:
        return {"ratio": None, "note": "only reo reached it (ratio < reo / budget)"}
    return {"ratio": reo / other, "note": ""}


# -- tasks -------------------------------------------------------------------------------------------
def run_toy_queries(seeds: Sequence[int], log: Callable[[str], None] = lambda s: None, device: str = "cpu") -> dict:
    """Toy task (the toy benchmark's task and methods) for each seed: per method, per-row first success."""
    from flowevo.benchmarks.toy import TOY_SETTINGS, toy_edit_task, toy_search

    budget, = _defaults_of("flowevo.benchmarks.toy", "run_toy_benchmark", "budget")
    first: dict[str, list[list[float]]] = {m: [] for m in METHODS}
    for seed in seeds:
        setup = toy_edit_task(seed, device=device)
        for m in METHODS:
            log(f"toy seed {seed}: {m}")
            counter = QueryCounter(setup.evaluator, len(setup.task), {"success": setup.success})
            toy_search(setup, m, budget, seed, evaluator=counter)
            first[m].append(counter.first["success"].tolist())
    return {"budget": budget, "settings": TOY_SETTINGS, "rows": len(setup.task), "goals": {"success": first}}


def _defaults_of(module: str, function: str, *names: str) -> tuple:
    """Default argument values of a benchmark runner (so this benchmark follows its settings)."""
    params = inspect.signature(getattr(importlib.import_module(module), function)).parameters
    return tuple(params[n].default for n in names)


# -- the benchmark -----------------------------------------------------------------------------------
def _digits_panels(raw: dict) -> dict:
    """Goal panels of the digits task: each goal over every method run on all sources, and, when a method ran on
    the first ``K`` sources only, each goal on those ``K`` sources for every method (same rows, comparable)."""
    rows = {m: e["rows"] for m, e in raw["evaluators"].items()}
    full, budget = raw["rows"], raw["budget"]
    panels = {}
    for g, per in raw["goals"].items():
        everywhere = {m: f for m, f in per.items() if rows[m] == full}
        panels[g] = {"first_success": everywhere, **summarise(everywhere, budget)}
    for k in sorted({r for r in rows.values() if r < full}):
        for g, per in raw["goals"].items():
            cut = {m: [seed[:k] for seed in f] for m, f in per.items()}
            panels[f"{g}, first {k} sources"] = {"first_success": cut, **summarise(cut, budget)}
    return panels


def quality_summary(final: dict[str, list[dict]], rows: int | None = None) -> dict:
    """Per method: median [min, max] over seeds of every numeric final score and of the hypervolume per source at
    each evaluation count; ``rows``: the hypervolume over the first ``rows`` sources only (from the per-source
    values; the other scores stay the method's own)."""
    def spread(vs: list[float]) -> dict:
        return {"median": statistics.median(vs), "min": min(vs), "max": max(vs)}

    out: dict = {}
    for m, seeds in final.items():
        row = {k: spread([s[k] for s in seeds]) for k, v in seeds[0].items()
               if isinstance(v, (int, float)) and all(s.get(k) is not None for s in seeds)}
        if "hypervolume_rows" in seeds[0]:
            at = list(seeds[0]["hypervolume_rows"])
            per = [[statistics.fmean(s["hypervolume_rows"][e][:rows]) for s in seeds] for e in at]
            row["hypervolume"] = {e: spread(v) for e, v in zip(at, per)}
        out[m] = row
    return out


def run_query_benchmark(out_dir: Path | str, seeds: Sequence[int] = (0, 1, 2, 3, 4), n: int = 200, tau: float = 0.9,
                        tasks: Sequence[str] = ("toy", "digits"), command: str | None = None,
                        log: Callable[[str], None] = lambda s: None, device: str = "cpu", sources: str | None = None,
                        methods: Sequence[str] | None = None, bo_rows: int | None = None, data: str | None = None,
                        crystal_sources: str | None = None, crystal_n: int = 100,
                        crystal_options: dict | None = None) -> dict:
    """Run the tasks over ``seeds``; write ``metrics.json``, ``queries.png`` (toy / digits) and
    ``crystals_queries.png`` (crystals); returns the metrics.

    Digits: ``sources`` (an ``.npz`` of ``images``, ``labels``; default the built-in held-out digits), ``methods``
    (default :data:`~flowevo.benchmarks.query_digits.QUERY_METHODS`) and ``bo_rows`` (sources BO runs on).
    Crystals (:mod:`flowevo.benchmarks.query_crystals`): ``data`` (a CDVAE-format CSV, required),
    ``crystal_sources`` (a CSV of sources; default held-out rows of ``data``), ``crystal_n`` sources and
    ``crystal_options`` (keyword arguments of :func:`~flowevo.benchmarks.query_crystals.run_crystals_queries`)."""
    if "crystals" in tasks and data is None:
        raise ValueError("the crystals task needs --data PATH.csv (a CDVAE-format CSV, e.g. Perov-5's val.csv)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = list(seeds)
    machine = machine_info(command or f"flowevo benchmark queries --out {out_dir} --n {n} --seeds {len(seeds)}")
    t0 = time.perf_counter()
    results: dict = {}
    if "toy" in tasks:
        raw = run_toy_queries(seeds, log, device)
        results["toy"] = {**{k: v for k, v in raw.items() if k != "goals"},
                          "goals": {g: {"first_success": f, **summarise(f, raw["budget"])} for g, f in raw["goals"].items()}}
    if "digits" in tasks:
        from flowevo.benchmarks.query_digits import BO_ROWS, QUERY_METHODS, run_digits_queries

        raw = run_digits_queries(seeds, n, tau, log, device, sources=sources, methods=methods or QUERY_METHODS,
                                 bo_rows=BO_ROWS if bo_rows is None else bo_rows)
        rows = {e["rows"] for e in raw["evaluators"].values()}
        quality = {"all sources": quality_summary({m: f for m, f in raw["final"].items()
                                                   if raw["evaluators"][m]["rows"] == raw["rows"]})}
        quality |= {f"first {k} sources": quality_summary(raw["final"], k) for k in sorted(rows) if k < raw["rows"]}
        results["digits"] = {**{k: v for k, v in raw.items() if k != "goals"}, "goals": _digits_panels(raw),
                             "quality": quality}
    if "crystals" in tasks:
        from flowevo.benchmarks.query_crystals import run_crystals_queries

        results["crystals"] = run_crystals_queries(str(data), seeds, crystal_n, crystal_sources, log=log,
                                                   **(crystal_options or {}))
    if "dev" in tasks:
        from flowevo.benchmarks.query_digits import run_dev_settings

        raw = run_dev_settings(tau=tau, log=log, device=device)
        results["dev"] = {**{k: v for k, v in raw.items() if k != "goals"},
                          "goals": {g: {"first_success": f, **summarise(f, raw["budget"])} for g, f in raw["goals"].items()}}
    metrics = {"benchmark": "queries", "command": machine["command"], "device": device, "seeds": seeds, "rates": list(RATES),
               "counting": "evaluations per source row up to and including its first success; candidates within a "
                           "batch counted in batch order", "tasks": results,
               "machine": {**machine, "load_average_end": load_average()}, "total_s": time.perf_counter() - t0}
    write_json(out_dir / "metrics.json", metrics)
    if _panels(metrics) or _hv_panels(metrics):
        plot_queries(metrics, out_dir / "queries.png")
    if "crystals" in results:
        from flowevo.benchmarks.query_crystals import plot_crystal_queries

        plot_crystal_queries(results["crystals"], out_dir / "crystals_queries.png")
    return metrics


def _ratio_text(v: dict, reo: float | None, budget: int, other: str) -> str:
    if v["ratio"] is not None:
        return f"{v['ratio']:.2f}"
    if reo is not None:  # the other method needs more than the budget
        return f"< {reo / budget:.2f} ({other} not within {budget})"
    return v["note"]


def _panels(metrics: dict) -> list[tuple[str, dict, int, int]]:
    return [(f"{task}: {goal}", g, t["budget"], len(t.get("seeds", metrics["seeds"])))
            for task, t in metrics["tasks"].items() for goal, g in t.get("goals", {}).items()]


def _hv_panels(metrics: dict) -> list[tuple[str, dict]]:
    return [(f"{task}, {name}", quality) for task, t in metrics["tasks"].items() for name, quality in t.get("quality", {}).items()
            if any("hypervolume" in q for q in quality.values())]


def plot_queries(metrics: dict, path: Path | str) -> Path:
    """Success rate against evaluations per source (median over seeds, band = min..max), and where measured the
    hypervolume per source against evaluations."""
    import matplotlib.pyplot as plt

    from flowevo.report.plots import save_figure

    panels, hv = _panels(metrics), _hv_panels(metrics)
    count = len(panels) + len(hv)
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 3.5), squeeze=False)
    for ax, (title, g, budget, n_seeds) in zip(axes[0], panels):
        for m, s in g["methods"].items():
            line, = ax.plot(g["grid"], s["curve_median"], label=m)
            ax.fill_between(g["grid"], s["curve_min"], s["curve_max"], color=line.get_color(), alpha=0.2)
        ax.set_xscale("log")
        ax.set(xlabel="black-box evaluations per source", ylabel="sources succeeded", ylim=(0, 1.02), xlim=(1, budget),
               title=f"{title} ({n_seeds} seeds)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    for ax, (task, quality) in zip(axes[0][len(panels):], hv):
        for m, q in quality.items():
            if "hypervolume" not in q:
                continue
            at = sorted(q["hypervolume"], key=int)
            e = [int(a) for a in at]
            line, = ax.plot(e, [q["hypervolume"][a]["median"] for a in at], marker="o", label=m)
            ax.fill_between(e, [q["hypervolume"][a]["min"] for a in at], [q["hypervolume"][a]["max"] for a in at],
                            color=line.get_color(), alpha=0.2)
        ax.set(xlabel="black-box evaluations per source", ylabel="hypervolume per source", title=f"{task}: hypervolume")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def query_tables(metrics: dict) -> str:
    """Markdown: per task and goal, median [min–max] evaluations to each success rate, and REO's ratios."""
    fmt = lambda v: "never" if v is None else f"{v:g}"
    lines = []
    for title, g, budget, n_seeds in _panels(metrics):
        rates = list(next(iter(g["methods"].values()))["median"])
        lines += [f"**{title}** (budget {budget} per source; median [min–max] over {n_seeds} seeds; "
                  f"'never' = not within the budget)", "",
                  "| method | " + " | ".join(f"to {float(r):.0%}" for r in rates) + " | success at budget |",
                  "|---|" + "---:|" * (len(rates) + 1)]
        for m, s in g["methods"].items():
            cells = " | ".join(f"{fmt(s['median'][r])} [{fmt(s['min'][r])}–{fmt(s['max'][r])}]" for r in rates)
            lines.append(f"| {m} | {cells} | {statistics.median(s['final_rate']):.2f} |")
        for reo, per in _ratios(g["methods"]).items():
            for other, ratios in per.items():
                cells = ", ".join(f"{float(r):.0%}: " + _ratio_text(v, g["methods"][reo]["median"][r], budget, other)
                                  for r, v in ratios.items())
                lines.append(f"\n{reo} / {other} (median evaluations): {cells}")
        lines.append("")
    for task, quality in [(t, q) for t, v in metrics["tasks"].items() for t, q in v.get("quality", {}).items()]:
        at = next((sorted(q["hypervolume"], key=int) for q in quality.values() if "hypervolume" in q), [])
        head = ["independent agreement", "morphology change", "s per evaluation outside the black box"]
        lines += [f"**{task}: kept edits and hypervolume** (median [min–max] over seeds)", "",
                  "| method | " + " | ".join(head + [f"HV @{a}" for a in at]) + " |", "|---|" + "---:|" * (len(head) + len(at))]
        for m, q in quality.items():
            cell = lambda d: "–" if d is None else f"{d['median']:.3g} [{d['min']:.3g}–{d['max']:.3g}]"
            cells = [cell(q.get(k)) for k in ("acc_independent", "morph_mean", "outside_s_per_evaluation")]
            cells += [cell(q.get("hypervolume", {}).get(a)) for a in at]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    if "crystals" in metrics["tasks"]:
        from flowevo.benchmarks.query_crystals import crystal_tables

        lines.append(crystal_tables(metrics["tasks"]["crystals"]))
    return "\n".join(lines) + "\n"
