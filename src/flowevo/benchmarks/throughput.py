"""Throughput against the hardware limit: decode rate vs the FLOP bound measured in the same run.

FLOPs of one velocity call are counted from the model's linear layers (2 * in * out per
sample; activations, norms and time features are ignored, so the bound is slightly
optimistic for the model). The bound on candidates per second is the measured float32 matmul
rate (the best of a measurement before and one after the decodes) divided by (FLOPs per call x
NFE of the solver).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from flowevo.benchmarks.machine import load_average, machine_info
from flowevo.flow import Condition, FixedGrid, ResidualCodec
from flowevo.jsonio import write_json

BATCHES = (64, 256, 1024, 4096)


def linear_flops_per_sample(model: nn.Module) -> int:
    """2 * in * out summed over every ``nn.Linear`` of ``model``: multiply-adds of one sample."""
    return sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def matmul_rate(n: int = 1024, seconds: float = 2.0) -> float:
    """Measured float32 matmul rate in FLOP/s (square ``n x n`` products, best of the repeats)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def _best_time(fn, repeats: int = 3) -> float:
    fn()
    return min(_timed(fn) for _ in range(repeats))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_throughput_benchmark(out_dir: Path | str, seed: int = 0, command: str | None = None) -> dict:
    """Decode throughput of the shipped digits flow per batch size vs the FLOP bound, and end-to-end REO.

    End to end is the digits benchmark's own REO (``DigitsBench.reo`` at tau 0.9: flow decode, VAE
    decode, CNN black box, pixel-distance objective, survival) on 200 sources x 24 residuals for
    3 generations after generation 0; candidates per second over the evolver's wall time."""
    from flowevo.benchmarks.digits import DigitsBench, load_sources
    from flowevo.domains.digits.models import load_digit_models

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info(command or f"flowevo benchmark throughput --out {out_dir} --seed {seed}")
    models = load_digit_models()
    disc = FixedGrid("rk4", 10)
    codec = ResidualCodec(models.flow, disc)
    flops_call = linear_flops_per_sample(models.flow)
    rate_start = matmul_rate()
    decode = {}
    g = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        for b in BATCHES:
            r = torch.randn(b, 16, generator=g)
            c = Condition.from_labels(torch.randint(0, 10, (b,), generator=g))
            s = _best_time(lambda: codec.decode_latent(r, c))
            decode[str(b)] = {"candidates_per_s": b / s, "seconds": s,
                              "gflop_per_s": b * flops_call * disc.nfe / s / 1e9}
        # the same 4096 decodes in chunks of 1024 (a cache-size check: is one big batch slower per sample?)
        r, c = torch.randn(4096, 16, generator=g), Condition.from_labels(torch.randint(0, 10, (4096,), generator=g))
        s = _best_time(lambda: [codec.decode_latent(r[i:i + 1024], c[i:i + 1024]) for i in range(0, 4096, 1024)])
        chunked = {"batch": 4096, "chunk": 1024, "candidates_per_s": 4096 / s}
        # the black box (CNN) on one generation's images (200 x 24) at several chunk sizes
        images = torch.rand(4800, 28, 28, generator=g)
        black_box = {str(k): {"images_per_s": 4800 / _best_time(lambda: [models.classifier(images[i:i + k])
                                                                         for i in range(0, 4800, k)], repeats=2)}
                     for k in (4096, 1024, 256)}
    rate_end = matmul_rate()
    # the bound uses the best matmul rate seen (before and after the decodes): on a loaded machine
    # one measurement can land in a quiet or a busy moment; the best is the closest to the hardware
    rate = max(rate_start, rate_end)
    bound = rate / (flops_call * disc.nfe)
    for r in [*decode.values(), chunked]:
        r["fraction_of_flop_bound"] = r["candidates_per_s"] / bound

    x, labels = load_sources(None, 200)
    targets = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(seed))
    bench = DigitsBench(models, x, labels, targets, seed, population=24, generations=3)
    reo = bench.reo(0.9)
    e2e = reo["evaluations"] * len(x) / reo["wall_s"]

    metrics = {
        "benchmark": "throughput",
        "command": machine["command"],
        "model": {"class": type(models.flow).__name__, "flops_per_sample_per_call": flops_call, "solver": "rk4, 10 steps",
                  "nfe": disc.nfe},
        "matmul_flops_per_s": rate, "matmul_flops_per_s_start_end": [rate_start, rate_end],
        "flop_bound_candidates_per_s": bound,
        "throughput": {"decode": decode, "decode_chunked": chunked, "black_box_by_chunk": black_box,
                       "end_to_end_digits": {"candidates_per_s": e2e, "rows": len(x), "population": 24, "generations": 3,
                                             "wall_s": reo["wall_s"], "evaluations_per_row": reo["evaluations"],
                                             "includes": "the digits benchmark's REO at tau 0.9: flow decode (rk4 10), "
                                                         "VAE decode, CNN black box, pixel distance, survival"}},
        "machine": {**machine, "load_average_end": load_average()},
    }
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def throughput_tables(metrics: dict) -> str:
    """Markdown: decode rate and fraction of the FLOP bound per batch; end-to-end REO rate."""
    d = metrics["throughput"]["decode"]
    e2e = metrics["throughput"]["end_to_end_digits"]
    return "\n".join([
        f"Matmul rate {metrics['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s (best of before / after the decodes; torch "
        f"threads: {metrics['machine'].get('torch_threads')}); "
        f"{metrics['model']['flops_per_sample_per_call'] / 1e6:.2f} MFLOP per sample per call x "
        f"NFE {metrics['model']['nfe']}: bound {metrics['flop_bound_candidates_per_s']:,.0f} decodes / s.", "",
        "| batch | " + " | ".join(d) + " |", "|---|" + "---:|" * len(d),
        "| decodes / s | " + " | ".join(f"{r['candidates_per_s']:,.0f}" for r in d.values()) + " |",
        "| fraction of the FLOP bound | " + " | ".join(f"{r['fraction_of_flop_bound']:.0%}" for r in d.values()) + " |",
        "", f"The same 4096 decodes in 4 chunks of 1024: {metrics['throughput']['decode_chunked']['candidates_per_s']:,.0f} "
            f"decodes / s ({metrics['throughput']['decode_chunked']['fraction_of_flop_bound']:.0%} of the bound). CNN black box, "
            "images / s by chunk size: " + ", ".join(f"{k}: {v['images_per_s']:,.0f}"
                                                    for k, v in metrics['throughput']['black_box_by_chunk'].items()) + ".",
        "", f"End-to-end digits REO: {e2e['candidates_per_s']:,.0f} candidates / s ({e2e['rows']} sources x "
            f"{e2e['population']} residuals, {e2e['generations']} generations after generation 0).", ""])
