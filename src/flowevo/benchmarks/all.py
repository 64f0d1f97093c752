"""Every benchmark in one run: ``DIR/<part>/`` per part, ``DIR/metrics.json`` and ``DIR/tables.md``.

Parts call the benchmarks' own runner functions (toy, digits, crystals, throughput, cost scaling,
query efficiency, evaluation backends). ``DIR/metrics.json`` holds each part's metrics, its wall
time and the load average before and after it, the machine (cores, torch threads, BLAS/MKL
config, CPU model) and the exact command. ``DIR/tables.md`` holds docs/benchmarks.md-ready
tables made from those metrics. A part that fails is recorded with its error and the run goes on.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from flowevo.benchmarks.machine import load_average, machine_info
from flowevo.jsonio import write_json

PARTS = ("toy", "digits", "crystals", "throughput", "cost", "queries", "scaling")
DEFAULT_PARTS = ("toy", "digits", "crystals", "throughput", "cost", "queries")  # crystals only with data


def parse_parts(only: str | Sequence[str] | None, data: str | Path | None) -> list[str]:
    """The parts to run: ``only`` (comma-separated or a list) or the defaults; checks names and data."""
    if only is None or only == "":
        return [p for p in DEFAULT_PARTS if p != "crystals" or data is not None]
    names = [s.strip() for s in (only.split(",") if isinstance(only, str) else only) if s.strip()]
    unknown = [n for n in names if n not in PARTS]
    if unknown or not names:
        raise ValueError(f"--only: unknown part(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(PARTS)}")
    if "crystals" in names and data is None:
        raise ValueError("--only crystals needs --data (a CDVAE-format CSV, e.g. ../shared/data/perov_5/val.csv)")
    return list(dict.fromkeys(names))


def _runners(data, seed: int, digits_n: int, crystals_n: int, query_seeds: int, query_n: int,
             log: Callable[[str], None], device: str = "cpu") -> dict[str, Callable[[Path], dict]]:
    from flowevo.benchmarks.cost_scaling import run_cost_benchmark
    from flowevo.benchmarks.crystals import run_crystals_benchmark
    from flowevo.benchmarks.digits import run_digits_benchmark
    from flowevo.benchmarks.query_efficiency import run_query_benchmark
    from flowevo.benchmarks.scaling import run_scaling_benchmark
    from flowevo.benchmarks.throughput import run_throughput_benchmark
    from flowevo.benchmarks.toy import run_toy_benchmark

    return {
        "toy": lambda out: run_toy_benchmark(out, seed=seed, device=device),
        "digits": lambda out: run_digits_benchmark(out, n=digits_n, seed=seed, log=log, device=device),
        "crystals": lambda out: run_crystals_benchmark(out, data, n=crystals_n, seed=seed, log=log, device=device,
                                                       command=f"flowevo benchmark crystals --data {data} --n {crystals_n} "
                                                               f"--out {out} --seed {seed}"),
        "throughput": lambda out: run_throughput_benchmark(out, seed=seed, device=device),
        "cost": lambda out: run_cost_benchmark(out, seed=seed, log=log, device=device),
        "queries": lambda out: run_query_benchmark(out, seeds=range(seed, seed + query_seeds), n=query_n, log=log,
                                                   device=device, data=None if data is None else str(data),
                                                   crystal_n=crystals_n,
                                                   tasks=("toy", "digits") + (("crystals",) if data else ())),
        "scaling": lambda out: run_scaling_benchmark(out, seed=seed),
    }


def run_all(out_dir: Path | str, data: str | Path | None = None, seed: int = 0, only: str | Sequence[str] | None = None,
            digits_n: int = 200, crystals_n: int = 100, query_seeds: int = 5, query_n: int = 200,
            command: str | None = None, log: Callable[[str], None] = print, device: str = "cpu") -> dict:
    """Run the chosen parts into ``out_dir/<part>/`` (on ``device``; scaling runs no model); write ``metrics.json``
    and ``tables.md``; return the metrics."""
    parts = parse_parts(only, data)
    if data is not None and not Path(data).is_file():
        raise FileNotFoundError(f"--data: no such file {data}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info(command or f"flowevo benchmark all --out {out_dir} --seed {seed}"
                           + (f" --data {data}" if data else "") + (f" --only {','.join(parts)}" if only else "")
                           + (f" --device {device}" if device != "cpu" else ""))
    runners = _runners(data, seed, digits_n, crystals_n, query_seeds, query_n, log, device)
    results: dict[str, dict] = {}
    t0 = time.perf_counter()
    for name in parts:
        log(f"== {name}")
        entry: dict = {"out": str(out_dir / name), "load_average_start": load_average()}
        start = time.perf_counter()
        try:
            entry["metrics"] = runners[name](out_dir / name)
        except Exception as exc:  # noqa: BLE001  (one failing part must not lose the others)
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc(limit=6)
            log(f"{name} failed: {entry['error']}")
        entry["wall_s"] = time.perf_counter() - start
        entry["load_average_end"] = load_average()
        results[name] = entry
        _write(out_dir, machine, results, t0)  # after every part, so an interrupted run keeps what it did
    return json.loads((out_dir / "metrics.json").read_text())


def _write(out_dir: Path, machine: dict, results: dict, t0: float) -> None:
    metrics = {"benchmark": "all", "command": machine["command"],
               "machine": {**machine, "load_average_end": load_average()},
               "parts": results, "total_s": time.perf_counter() - t0}
    write_json(out_dir / "metrics.json", metrics, default=str)
    (out_dir / "tables.md").write_text(tables(metrics))


# -- tables ------------------------------------------------------------------------------------------
def _f(v, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)


def toy_tables(m: dict) -> str:
    lines = ["| solver | NFE / direction | mean rel. error | max rel. error |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v['nfe']:g} | {v['mean']:.1e} | {v['max']:.1e} |" for k, v in m["roundtrip_rel_error"].items()]
    lines += ["", "| method | success rate | evaluations to target (median over rows) | best projection (mean) | wall s |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {k} | {r['success_rate']:.2f} | {_f(r['evaluations_to_target'], 'g')} | "
              f"{r['best_projection_mean']:.2f} | {r['wall_s']:.1f} |" for k, r in m["methods"].items()]
    return "\n".join(lines) + "\n"


def digits_tables(m: dict) -> str:
    dims = ("area", "length", "thickness", "width", "height")
    lines = ["| method | ACC | ACC indep. | mean p(target) | " + " | ".join(dims) + " | morph | evals / digit | wall s |",
             "|---|" + "---:|" * (len(dims) + 6)]
    for k, r in m["methods"].items():
        rel = r.get("morph_rel_change", {})
        lines.append(f"| {k} | {r['acc']:.3f} | {r['acc_independent']:.3f} | {r['mean_p_target']:.3f} | "
                     + " | ".join(_f(rel.get(d), ".3f") for d in dims)
                     + f" | {r['morph_mean']:.3f} | {r['evaluations']:.0f} | {r['wall_s']:.1f} |")
    for name, pts in m.get("fronts", {}).items():
        lines += ["", f"| {name} setting | " + " | ".join(f"{p['setting']:g}" for p in pts) + " |",
                  "|---|" + "---|" * len(pts),
                  "| p / indep / morph | " + " | ".join(f"{p['mean_p_target']:.2f} / {p['acc_independent']:.2f} / "
                                                      f"{p['morph_mean']:.3f}" for p in pts) + " |"]
    return "\n".join(lines) + "\n"


def crystals_tables(m: dict) -> str:
    methods = list(m["methods"])
    budgets = list(next(iter(m["methods"].values()))["budgets"])
    lines = ["SR5 / SR10 / SR15 (independent judge):", "", "| budget | " + " | ".join(methods) + " |",
             "|---|" + "---|" * len(methods)]
    for b in budgets:
        cells = []
        for k in methods:
            r = m["methods"][k]["budgets"].get(b, {})
            cells.append(" / ".join(_f(r.get(s)) for s in ("sr5", "sr10", "sr15")))
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def scaling_tables(m: dict) -> str:
    lines = ["| backend | workers | candidates / s | overhead / candidate (ms) |", "|---|---:|---:|---:|"]
    for name, per in m["backends"].items():
        for w, r in per.items():
            if isinstance(r, dict) and "candidates_per_s" in r:
                lines.append(f"| {name} | {w} | {r['candidates_per_s']:.1f} | {_f(r.get('overhead_ms'), '.3f')} |")
    return "\n".join(lines) + "\n"


def tables(metrics: dict) -> str:
    """docs/benchmarks.md-ready markdown for every part that ran (errors are listed)."""
    from flowevo.benchmarks.cost_scaling import cost_tables
    from flowevo.benchmarks.query_efficiency import query_tables
    from flowevo.benchmarks.throughput import throughput_tables

    fmt = {"toy": toy_tables, "digits": digits_tables, "crystals": crystals_tables, "throughput": throughput_tables,
           "cost": cost_tables, "queries": query_tables, "scaling": scaling_tables}
    mc = metrics["machine"]
    out = [f"# Benchmark tables\n\nCommand: `{metrics['command']}`\n\nMachine: {mc['cpu_model']}, {mc['cores']} cores, "
           f"torch {mc['torch']}, torch threads: {mc['torch_threads']}, BLAS {mc['blas']}; load average at start "
           f"{mc['load_average_start']}, at end {mc.get('load_average_end')}.\n"]
    for name, entry in metrics["parts"].items():
        head = (f"## {name}\n\nCommand: `{entry['metrics'].get('command', '')}` — {entry['wall_s']:.0f} s, "
                f"load average {entry['load_average_start']} → {entry['load_average_end']}\n") if "metrics" in entry \
            else f"## {name}\n"
        if "error" in entry:
            out.append(head + f"\nFailed: `{entry['error']}`\n")
            continue
        try:
            out.append(head + "\n" + fmt[name](entry["metrics"]))
        except (KeyError, TypeError, StopIteration) as exc:  # a runner's metrics changed shape: say so, keep the rest
            out.append(head + f"\n(no table: metrics lack {exc!r}; see {entry['out']}/metrics.json)\n")
    return "\n".join(out)
