"""``report.html`` for an optimisation run directory, built from its files only (no model needed).

Sections: summary, objective curves per generation, the Pareto front (alignment vs
preservation, coloured by diversity), lineage (self- vs cross-pollination), the domain's own
view (an image grid for images, a table for vectors), failures, the resolved configuration
and the files. Images are PNG files next to ``report.html``; the page opens from disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flowevo.jsonio import read_json
from flowevo.objectives import sense_sign
from flowevo.report.crystal_view import crystal_edits_table
from flowevo.report.grids import image_grid
from flowevo.report.html import Report
from flowevo.report.plots import plot_curves, plot_lineage, plot_pareto

__all__ = ["write_run_report"]

ORIGIN_NAMES = np.array(["seed", "self", "cross"])
MAX_GRID_ROWS = 12
MAX_TABLE_DIMS = 4


def _load_json(path: Path, default: Any = None) -> Any:
    if not path.is_file():
        if default is not None:
            return default
        raise FileNotFoundError(f"{path.parent}: no {path.name}; not a finished optimize run directory "
                                "(run flowevo optimize, or flowevo resume if it was killed)")
    return read_json(path)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent}: no {path.name}; not a finished optimize run directory")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise ValueError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from exc


def _diversity(decoded: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Per individual: mean data-space distance to the other individuals of its source row."""
    out = np.zeros(len(decoded))
    if not len(decoded):
        return out
    flat = decoded.reshape(len(decoded), -1).astype(np.float64)
    for b in np.unique(row):
        idx = np.flatnonzero(row == b)
        if len(idx) < 2:
            continue
        d = np.linalg.norm(flat[idx, None] - flat[None, idx], axis=-1)
        out[idx] = d.sum(1) / (len(idx) - 1)
    return out


def _axes(objs: list[dict], values: np.ndarray, decoded: np.ndarray, sources: np.ndarray, row: np.ndarray):
    """(x, y, labels): the first alignment objective vs the first preservation objective (or the measured
    distance to the source when none is optimised)."""
    roles = [o.get("role", "alignment") for o in objs]
    ia = next((j for j, r in enumerate(roles) if r == "alignment"),
              next((j for j, r in enumerate(roles) if r != "preservation"), 0))
    ip = next((j for j, r in enumerate(roles) if r == "preservation" and j != ia), None)
    x = values[:, ia]
    xl = f"{objs[ia]['name']} ({objs[ia]['sense']}) - alignment"
    if ip is not None:
        return x, values[:, ip], (xl, f"{objs[ip]['name']} ({objs[ip]['sense']}) - preservation")
    dist = np.linalg.norm((decoded - sources[row]).reshape(len(row), -1), axis=1)
    return x, dist, (xl, "distance to source (measured, not optimised)")


def _fmt_vec(v: np.ndarray) -> str:
    flat = np.asarray(v).reshape(-1)
    head = ", ".join(f"{a:.2f}" for a in flat[:MAX_TABLE_DIMS])
    return f"[{head}{', ...' if flat.size > MAX_TABLE_DIMS else ''}]"


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _crystal_view(r: Report, run_dir: Path, metrics: dict) -> None:
    """Crystal runs: the success rates by the saved judge, then one row per source (:func:`crystal_edits_table`)."""
    rows = _load_json(run_dir / "crystals.json")
    if "thresholds" in metrics:
        r.table([{"success rate": f"{k.upper()}: judged below {v:.3f} (training percentile)",
                  "share of sources": f"{metrics.get(k, 0):.0%}"} for k, v in metrics["thresholds"].items()])
        r.text(f"{metrics.get('judge', 'the saved judge')}. Kept edits: {metrics.get('kept_rate', 0):.0%} of sources; "
               f"decoded under {metrics.get('property', 'the property')} = {_num(metrics.get('target_value'))}.",
               note=True)
    crystal_edits_table(r, rows)


def _domain_view(r: Report, run_dir: Path, info: dict, src: dict, pop: dict, objs: list[dict],
                 metrics: dict | None = None) -> None:
    if info.get("data_kind") == "crystals":
        _crystal_view(r, run_dir, metrics or {})
        return
    names = [o["name"] for o in objs]
    rows = len(src["x"])
    best, best_vals, best_viol = src["best"], src["best_values"], src["best_violation"]
    class_names = info.get("class_names")
    cls = lambda i: str(i) if not class_names else f"{class_names[i]}"  # noqa: E731
    target = info.get("target") or {}
    tgt = ", ".join(f"{k} {cls(v) if k == 'class' else v}" for k, v in target.items() if v is not None)
    label = lambda b: (f"#{b}: {cls(int(src['c'][b]))}" if "c" in src else f"#{b}")  # noqa: E731
    if info.get("data_kind") == "images":
        n = min(rows, MAX_GRID_ROWS)
        lo, hi = float(src["x"].min()), float(src["x"].max())
        scale = lambda a: np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)  # noqa: E731  (display range: the sources')
        imgs = lambda a: scale(a[:n, 0] if a.ndim == 4 and a.shape[1] == 1  # noqa: E731
                               else (a[:n].transpose(0, 2, 3, 1) if a.ndim == 4 else a[:n]))
        cols = {"source": imgs(src["x"]), "best edit": imgs(best)}
        short = names[0] if len(names[0]) <= 10 else names[0][:9] + "."
        captions = {"best edit": [f"{short}={best_vals[b, 0]:.3g}" + ("" if best_viol[b] == 0 else " (infeasible)")
                                  for b in range(n)]}
        # up to three more members of each source's Pareto set, ordered by the first objective; empty cells white
        blank = hi if pop["decoded"].ndim == 4 and pop["decoded"].shape[1] > 1 else lo  # RGB as is; grey: gray_r
        order = np.lexsort((pop["values"][:, 0] * float(sense_sign([objs[0]["sense"]])[0]), pop["row"]))
        for k in range(3):
            col, cap = [], []
            for b in range(n):
                members = [i for i in order if pop["row"][i] == b and pop["pareto"][i]]
                if k + 1 < len(members):
                    i = members[k + 1]
                    col.append(pop["decoded"][i])
                    cap.append(f"{short}={pop['values'][i, 0]:.3g} ({ORIGIN_NAMES[pop['origin'][i]]})")
                else:
                    col.append(np.full_like(pop["decoded"][0], blank))
                    cap.append("")
            if any(cap):
                cols[f"Pareto {k + 2}"] = imgs(np.stack(col))
                captions[f"Pareto {k + 2}"] = cap
        image_grid(cols, run_dir / "edits.png", row_labels=[label(b) for b in range(n)], cell_labels=captions,
                   title=f"edits toward {tgt}" if tgt else "edits")
        r.image("edits.png", f"first {n} of {rows} sources: the source, its best edit (feasible first, then by "
                             f"{names[0]}) and further members of its Pareto set (caption: origin of the last step)")
    table = []
    for b in range(rows):
        row: dict[str, Any] = {"source": label(b)}
        if info.get("data_kind") != "images":
            row["x (source)"] = _fmt_vec(src["x"][b])
            row["x (best edit)"] = _fmt_vec(best[b])
            row["|change|"] = float(np.linalg.norm((best[b] - src["x"][b]).reshape(-1)))
        for j, name in enumerate(names):
            row[name] = float(best_vals[b, j])
        row["feasible"] = "yes" if best_viol[b] == 0 else ("failed" if not np.isfinite(best_viol[b])
                                                           else f"no ({best_viol[b]:.3g})")
        row["Pareto set size"] = int(((pop["row"] == b) & pop["pareto"]).sum())
        table.append(row)
    r.table(table, nowrap=info.get("data_kind") != "images")
    if info.get("data_kind") != "images":
        r.text(f"Vectors: the first {MAX_TABLE_DIMS} of {int(np.prod(info['shape']))} features; sources.npz holds every "
               "source with its best edit ('x', 'best'), population.npz every survivor.", note=True)


def write_run_report(run_dir: str | Path) -> Path:
    """Build ``run_dir/report.html`` (and its PNGs) from the files an optimize run wrote; returns its path.

    Raises:
        FileNotFoundError / ValueError: a file the report needs is missing or unreadable.

    Example:
        >>> write_run_report("runs/blobs")          # doctest: +SKIP
        PosixPath('runs/blobs/report.html')
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    info = _load_json(run_dir / "run.json")
    metrics = _load_json(run_dir / "metrics.json")
    history = _load_json(run_dir / "history.json")
    lineage = _load_json(run_dir / "lineage.json", default=[])
    failures = _load_json(run_dir / "failures.json", default=[])
    config = _load_json(run_dir / "config.resolved.json", default={})
    pop = _load_npz(run_dir / "population.npz")
    src = _load_npz(run_dir / "sources.npz")
    objs = metrics["objectives"]
    names, senses = [o["name"] for o in objs], [o["sense"] for o in objs]

    r = Report(f"flowevo run: {run_dir.name}", toc=True)
    target = info.get("target") or {}
    r.text(f"{metrics['rows']} sources from {info.get('sources')} edited toward "
           f"{', '.join(f'{k} {v}' for k, v in target.items() if v is not None) or 'the target'} with the model at "
           f"{info.get('model')}: {info.get('population')} residuals per source, {metrics['generations']} generations, "
           f"{metrics['evaluations']} black-box evaluations ({metrics['stop_reason']}).")
    r.section("Summary")
    summary = [{"what": "objectives", "value": ", ".join(f"{o['name']} ({o['sense']}, {o['role']})" for o in objs)},
               {"what": "constraints", "value": ", ".join(f"{c['name']} <= {c['bound']:g}"
                                                          for c in info.get("constraints", [])) or "none"},
               {"what": "sources with a feasible edit", "value": f"{metrics['rows_feasible']:.0%}"},
               {"what": "Pareto points per source", "value": f"{metrics['pareto_points_per_row']:.1f}"},
               {"what": "failed evaluations", "value": str(metrics["failures"])},
               {"what": "wall time", "value": f"{metrics['wall_s']:.1f} s"}]
    for j, o in enumerate(objs):
        a, b = metrics["initial_mean_best"][j], metrics["final_mean_best"][j]
        summary.append({"what": f"{o['name']}: mean best, generation 0 -> last",
                        "value": f"{'-' if a is None else format(a, '.4g')} -> {'-' if b is None else format(b, '.4g')}"})
    r.table(summary)

    r.section("Objective curves")
    plot_curves(history, names, senses, run_dir / "curves.png")
    r.image("curves.png", "per objective: mean over sources of each source's best feasible value, per generation; "
                          "feasibility: per-constraint satisfaction of the new candidates (dashed) and, with "
                          "constraint_handling = lagrangian, each constraint's multiplier (dotted, right axis)")

    r.section("Pareto front")
    feas = np.isfinite(pop["violation"]) & (pop["violation"] == 0)
    x, y, labels = _axes(objs, pop["values"], pop["decoded"], src["x"], pop["row"])
    div = _diversity(pop["decoded"][feas], pop["row"][feas])
    plot_pareto(x[feas], y[feas], div, pop["pareto"][feas], labels,
                "diversity (mean distance to siblings)", run_dir / "pareto.png")
    r.image("pareto.png", "every feasible survivor of every source; black edges: its source's Pareto set; colour: "
                          "diversity, the mean data-space distance to the other feasible survivors of the same source")

    r.section("Lineage")
    origin_names = ORIGIN_NAMES[pop["origin"]]
    plot_lineage(lineage, pop["row"], origin_names, pop["donor_row"], run_dir / "lineage.png")
    r.image("lineage.png", "origin = the operator that made an individual last: seed (generation 0), "
                           "self-pollination (local, keeps identity) or cross-pollination (recombined with a donor source)")
    r.table([{"origin": o, "final survivors": int((origin_names == o).sum()),
              "in a Pareto set": int(((origin_names == o) & pop["pareto"]).sum()),
              "new candidates kept (all generations)": sum(rec.get(f"kept_{o}", 0) for rec in lineage[1:])
                                                       if o != "seed" else "-",
              "new candidates made": sum(rec.get(f"new_{o}", 0) for rec in lineage[1:]) if o != "seed" else "-"}
             for o in ("seed", "self", "cross")])

    r.section("Edits", anchor="domain-view")
    _domain_view(r, run_dir, info, src, pop, objs, metrics)

    if failures:
        r.section("Failures")
        r.text(f"{len(failures)} evaluations failed (the candidate was marked infeasible; the run went on). First 20:")
        r.table([{"index in its batch": f["index"], "source": f["row"], "objective": f["name"], "error": f["error"][:200]}
                 for f in failures[:20]])

    r.section("Configuration")
    r.text("The resolved configuration (defaults, file, --set overrides and flags), as in config.resolved.json:", note=True)
    r.json(config)

    r.section("Files")
    files = [("config.resolved.json", "the configuration above"), ("metrics.json", "all figures"),
             ("history.json", "per-generation records"), ("lineage.json", "per-generation origins"),
             ("population.npz", "final survivors: decoded, residuals, values, origin, donor row, Pareto mask"),
             ("sources.npz", "sources and each one's best edit"), ("crystals.json", "crystal edits (table above)"),
             ("edits.csv", "crystal edits, one line per source (spreadsheet)"), ("cif", "CIFs and pictures"),
             ("failures.json", "failed evaluations"),
             ("checkpoint.pt", "evolver state (flowevo resume)")]
    r.table([{"file": f, "what": w, "href": f} for f, w in files if (run_dir / f).exists()], links={"file": "href"})
    return r.write(run_dir)
