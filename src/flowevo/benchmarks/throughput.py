"""Throughput against the hardware limit: decode rate vs the FLOP bound measured in the same run.

FLOPs of one velocity call are counted from the model's linear layers (2 * in * out per
sample; activations, norms and time features are ignored, so the bound is slightly
optimistic for the model). The bound on candidates per second is the measured float32 matmul
rate divided by (FLOPs per call x NFE of the solver).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn

from flowevo.flow import Condition, FixedGrid, ResidualCodec

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


def run_throughput_benchmark(out_dir: Path | str, seed: int = 0) -> dict:
    """Decode throughput of the shipped digits flow per batch size vs the FLOP bound, and end-to-end REO."""
    from flowevo.benchmarks.digits import DigitsBench, load_sources
    from flowevo.domains.digits.models import load_digit_models
    from flowevo.evolve import Evolver, MaxGenerations

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = load_digit_models()
    disc = FixedGrid("rk4", 10)
    codec = ResidualCodec(models.flow, disc)
    flops_call = linear_flops_per_sample(models.flow)
    rate = matmul_rate()
    bound = rate / (flops_call * disc.nfe)
    decode = {}
    g = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        for b in BATCHES:
            r = torch.randn(b, 16, generator=g)
            c = Condition.from_labels(torch.randint(0, 10, (b,), generator=g))
            s = _best_time(lambda: codec.decode_latent(r, c))
            decode[str(b)] = {"candidates_per_s": b / s, "fraction_of_flop_bound": (b / s) / bound, "seconds": s}

    x, labels = load_sources(None, 200)
    targets = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(seed))
    bench = DigitsBench(models, x, labels, targets, seed, population=24, generations=3)
    start = time.perf_counter()
    res = Evolver(bench.codec, bench.task, bench.evaluator(0.9), population_size=24,
                  termination=[MaxGenerations(3)], seed=seed, extra_seeds=bench.target_seeds).run()
    e2e = res.evaluations / (time.perf_counter() - start)

    metrics = {
        "benchmark": "throughput",
        "command": f"flowevo benchmark throughput --out {out_dir} --seed {seed}",
        "model": {"class": type(models.flow).__name__, "flops_per_sample_per_call": flops_call, "solver": "rk4, 10 steps",
                  "nfe": disc.nfe},
        "matmul_flops_per_s": rate, "flop_bound_candidates_per_s": bound,
        "throughput": {"decode": decode,
                       "end_to_end_digits": {"candidates_per_s": e2e, "rows": 200, "population": 24, "generations": 3,
                                             "includes": "flow decode (rk4 10), VAE decode, CNN black box, survival"}},
        "machine": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "platform": platform.platform(),
                    "blas": torch.__config__.show().split("BLAS_INFO=")[-1].split(",")[0] if "BLAS_INFO" in torch.__config__.show() else None},
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
