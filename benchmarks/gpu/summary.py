"""Print every "Done when" figure of issue 14 that benchmarks/gpu/check.sh measured (reads its output folder).

python benchmarks/gpu/summary.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def throughput(out: Path) -> list[str]:
    m = _load(out / "throughput" / "metrics.json")
    if m is None:
        log = out / "throughput.log"
        return ["throughput: no metrics.json" + (": " + log.read_text()[-1500:] if log.exists() else "")]
    g, rates, d = m["gpu"], m["matmul_flops_per_s"], m["throughput"]["decode"]
    lines = [
        f"device {g['name']} ({g['memory_gib']} GiB, cc {g['capability']}), torch {g['torch']}, CUDA {g['cuda']}",
        "matmul (n=8192, best of before/after): " + ", ".join(f"{p} {v / 1e12:.0f} TFLOP/s" for p, v in rates.items()),
        "bound (decodes/s): " + ", ".join(f"{p} {v:,.0f}" for p, v in m["flop_bound_candidates_per_s"].items()),
        f"decodes/s (share of the bound at that precision), capture {m['default_capture']}:",
    ]
    for p, rows in d.items():
        lines.append(
            f"  {p:5s} "
            + "  ".join(
                f"{int(b):>9,}: {r['candidates_per_s']:>11,.0f} ({r['fraction_of_flop_bound']:5.1%})"
                for b, r in rows.items()
            )
        )
    by = m["throughput"].get("decode_by_capture", {})
    if by:
        lines.append("capture modes (decodes/s, share of the bound):")
        cases = sorted({(p, b) for per in by.values() for p, rows in per.items() for b in rows})
        for p, b in cases:
            cells = {mode: per[p][b] for mode, per in by.items() if p in per and b in per[p]}
            best = max(cells, key=lambda k: cells[k]["candidates_per_s"])
            lines.append(
                f"  {p} batch {int(b):,}: "
                + ", ".join(
                    f"{k} {v['candidates_per_s']:,.0f} ({v['fraction_of_flop_bound']:.1%})" for k, v in cells.items()
                )
                + f"  -> fastest: {best}"
            )
    share_4096 = d["fp32"].get("4096", {}).get("fraction_of_flop_bound")
    modes_4096 = [per["fp32"]["4096"]["fraction_of_flop_bound"] for per in by.values() if "4096" in per.get("fp32", {})]
    tf32_big = [r["fraction_of_flop_bound"] for b, r in d["tf32"].items() if int(b) >= 65536]
    tf32_modes = [
        r["fraction_of_flop_bound"] for per in by.values() for b, r in per.get("tf32", {}).items() if int(b) >= 65536
    ]
    lines += [
        f"BAR fp32 decode at batch 4,096 >= 25% of the fp32 bound: default capture {_pct(share_4096)} -> "
        f"{_verdict(None if share_4096 is None else share_4096 >= 0.25)}; best capture mode {_pct(_max(modes_4096))}",
        f"BAR tf32 decode at batch >= 65,536 >= 40% of the tf32 bound: default capture best {_pct(_max(tf32_big))} -> "
        f"{_verdict(None if not tf32_big else max(tf32_big) >= 0.40)}; best capture mode {_pct(_max(tf32_modes))}",
    ]
    lines.append("round trip (relative, digits latents; median / max; decode vs fp32 median):")
    for p, v in m["roundtrip_rel_error"].items():
        lines.append(f"  {p:5s} {v['median']:.2e} / {v['max']:.2e}; {v['decode_vs_fp32_median']:.2e}")
    e2e = m["throughput"]["end_to_end_digits"]
    lines.append(
        "end-to-end digits REO on the GPU: "
        + (
            f"{e2e['candidates_per_s']:,.0f} candidates/s ({e2e['wall_s']:.1f} s)"
            if "error" not in e2e
            else f"FAILED: {e2e['error'][:300]}"
        )
    )
    return lines


def tests(out: Path) -> list[str]:
    log = out / "pytest.log"
    if not log.exists():
        return ["tests: not run"]
    text = log.read_text().splitlines()
    keep = [
        ln
        for ln in text
        if ("passed" in ln or "failed" in ln or "error" in ln.lower() or "exit" in ln) and len(ln) < 300
    ]
    return ["pytest:"] + [f"  {ln}" for ln in keep[-8:]]


# seed noise of the digits metrics between two whole runs (about 3 standard deviations of the difference of two
# runs, from the spread of the ablation seeds in benchmarks/results/digits): a CUDA run draws other random numbers
NOISE = {"acc": 0.05, "acc_independent": 0.07, "mean_p_target": 0.02, "morph_mean": 0.015}


def _side_by_side(cuda: dict, cpu: dict, what: str) -> list[str]:
    lines, ok = [], True
    for name in cpu["methods"]:
        a, b = cuda["methods"].get(name, {}), cpu["methods"][name]
        diffs = {k: abs(a.get(k, float("nan")) - b[k]) for k in NOISE if k in b}
        within = all(d <= NOISE[k] for k, d in diffs.items())
        ok &= within
        lines.append(f"  {name:10s} " + ", ".join(f"{k} {a.get(k, float('nan')):.3f} vs {b[k]:.3f}" for k in diffs)
                     + ("" if within else "  <- beyond seed noise"))
    return [f"{what}, cuda vs cpu (tolerances {NOISE}):", *lines,
            f"BAR {what}: same metrics on cuda as on cpu within seed noise -> {_verdict(ok)}"]


def digits(out: Path) -> list[str]:
    cuda, cpu = _load(out / "digits_cuda" / "metrics.json"), _load(out / "digits_cpu" / "metrics.json")
    if cuda is None and cpu is None:
        return [
            "digits --device cuda / cpu: not run (PARTS=digits)"
            if not (out / "digits_cuda.log").exists()
            else "digits: failed: " + (out / "digits_cuda.log").read_text()[-800:]
        ]
    if cuda is None or cpu is None:
        failed = "cuda" if cuda is None else "cpu"
        log = (out / f"digits_{failed}.log").read_text()[-800:]
        return ["digits benchmark:", f"  --device {failed} failed: {log}"]
    lines = _side_by_side(cuda, cpu, "digits benchmark (n 200, 1 ablation seed)")
    ratio = cpu["total_s"] / cuda["total_s"]
    lines.append(
        f"BAR digits benchmark cuda >= 5x faster than cpu: {cpu['total_s']:.0f} s / {cuda['total_s']:.0f} s = "
        f"{ratio:.1f}x -> {_verdict(ratio >= 5)}"
    )
    return lines


def demo(out: Path) -> list[str]:
    cuda, cpu = _load(out / "demo_cuda.json"), _load(out / "demo_cpu.json")
    if cuda is None and cpu is None:
        return ["demo digits --device cuda / cpu: not run (PARTS=demo)" if not (out / "demo_cuda.log").exists()
                else "demo digits: failed: " + (out / "demo_cuda.log").read_text()[-800:]]
    if cuda is None or cpu is None:
        missing = "cuda" if cuda is None else "cpu"
        log = out / f"demo_{missing}.log"
        why = "failed: " + log.read_text()[-800:] if log.exists() else "not run here (compare with a CPU run's --json)"
        return ["demo digits:", f"  --device {missing} {why}"]
    return [*_side_by_side(cuda, cpu, "demo digits (n 200)"),
            f"  wall: cuda {cuda['wall_s']:.0f} s, cpu {cpu['wall_s']:.0f} s"]


def commands(out: Path) -> list[str]:
    log = out / "commands.log"
    if not log.exists():
        return ["commands: not run (PARTS=commands)"]
    keep = [ln for ln in log.read_text().splitlines()
            if any(w in ln for w in ("passed", "failed", "FAILED", "exit", "SKIPPED")) and len(ln) < 300]
    return ["pytest tests/gpu/test_commands_cuda.py:"] + [f"  {ln}" for ln in keep[-14:]]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/gpu_check")
    env = out / "env.txt"
    print(
        "\n".join(
            [
                "==== issue 14 GPU check summary",
                *(env.read_text().strip().splitlines() if env.exists() else []),
                *tests(out),
                *throughput(out),
                *commands(out),
                *demo(out),
                *digits(out),
            ]
        )
    )


if __name__ == "__main__":
    main()
