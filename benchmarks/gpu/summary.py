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


def digits(out: Path) -> list[str]:
    cuda, cpu = _load(out / "digits_cuda" / "metrics.json"), _load(out / "digits_cpu" / "metrics.json")
    if cuda is None and cpu is None:
        return [
            "digits --device cuda / cpu: not run (PARTS=digits)"
            if not (out / "digits_cuda.log").exists()
            else "digits: failed: " + (out / "digits_cuda.log").read_text()[-800:]
        ]
    lines = ["digits benchmark (n 200, 1 ablation seed), cuda vs cpu:"]
    if cuda is None or cpu is None:
        failed = "cuda" if cuda is None else "cpu"
        return lines + [f"  --device {failed} failed: " + (out / f"digits_{failed}.log").read_text()[-800:]]
    for name in cpu["methods"]:
        a, b = cuda["methods"].get(name, {}), cpu["methods"][name]
        lines.append(
            f"  {name:10s} acc {a.get('acc', float('nan')):.3f} vs {b['acc']:.3f}, morph "
            f"{a.get('morph_mean', float('nan')):.3f} vs {b['morph_mean']:.3f}"
        )
    ratio = cpu["total_s"] / cuda["total_s"]
    lines.append(
        f"BAR digits benchmark cuda >= 5x faster than cpu: {cpu['total_s']:.0f} s / {cuda['total_s']:.0f} s = "
        f"{ratio:.1f}x -> {_verdict(ratio >= 5)}"
    )
    return lines


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
                *digits(out),
            ]
        )
    )


if __name__ == "__main__":
    main()
