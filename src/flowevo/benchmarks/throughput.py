"""Throughput against the hardware limit: decode rate vs the FLOP bound measured in the same run.

FLOPs of one velocity call are counted from the model's linear layers (2 * in * out per
sample; activations, norms and time features are ignored, so the bound is slightly
optimistic for the model). The bound on candidates per second is the measured matmul rate
(the best of a measurement before and one after the decodes) divided by (FLOPs per call x NFE
of the solver).

On the CPU (the default): decode rate at batches 64 to 4,096 against the float32 bound, the same
at batch 1,024 with bfloat16 autocast against the bfloat16 bound, round-trip error per precision,
the CNN black box by chunk size, and the end-to-end digits REO rate.

On CUDA: decode rate at batches 1,024 to 1,048,576 for each precision (float32 with TF32 off,
TF32, bfloat16 autocast) in the codec's default capture, timed with CUDA events, each against the
bound of square matmuls at that precision (n = 8,192, synchronised, CUDA events); the capture
modes (eager, CUDA graph, torch.compile, both) compared at fp32 / 4,096 and tf32 / 65,536;
round-trip error per
precision; the end-to-end digits REO rate on the device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from flowevo.benchmarks.machine import load_average, machine_info
from flowevo.flow import Condition, FixedGrid, ResidualCodec
from flowevo.flow.precision import precision_context
from flowevo.jsonio import write_json

BATCHES = (64, 256, 1024, 4096)
CUDA_BATCHES = (1024, 4096, 16384, 65536, 262144, 1048576)
PRECISIONS = ("fp32", "tf32", "bf16")
CAPTURES = ("none", "graph", "compile", "graph+compile")
CAPTURE_CASES = (("fp32", 4096), ("tf32", 65536))  # the two GPU bars: fp32 at 4,096, tf32 at >= 65,536
STEPS = 10
CUDA_MATMUL_N = 8192
MATMUL_SECONDS = 1.0  # per precision, before and after the decodes (CUDA run)
ROUNDTRIP_N = 1024


def linear_flops_per_sample(model: nn.Module) -> int:
    """2 * in * out summed over every ``nn.Linear`` of ``model``: multiply-adds of one sample."""
    return sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def matmul_rate(n: int = 1024, seconds: float = 2.0, device: str | torch.device = "cpu",
                precision: str = "fp32") -> float:
    """Measured matmul rate in FLOP/s: square ``n x n`` products at ``precision``, best of the repeats.

    ``fp32``: float32 operands (TF32 off on CUDA); ``tf32``: float32 operands on TF32 units
    (CUDA; the CPU has none, so it measures float32); ``bf16``: bfloat16 operands. On CUDA each
    product is timed with CUDA events and synchronised.
    """
    device = torch.device(device)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    with precision_context("fp32" if precision == "bf16" else precision, device):
        torch.mm(a, b)
        best, end = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            best = max(best, 2 * n**3 / _timed(lambda: torch.mm(a, b), device))
    return best


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call: CUDA events (synchronised) on CUDA, the wall clock elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _best_time(fn: Callable[[], object], repeats: int = 3, device: torch.device | None = None,
               warmup: int = 1) -> float:
    device = torch.device("cpu") if device is None else device
    for _ in range(warmup):
        fn()
    return min(_timed(fn, device) for _ in range(repeats))


def decode_rate(flow: nn.Module, batch: int, disc: FixedGrid, device: torch.device, seed: int,
                flops_call: int, repeats: int = 3) -> dict:
    """Decodes per second of ``ResidualCodec(flow, disc).decode_latent`` on ``batch`` random residuals.

    On CUDA the first two calls are warm-up (an eager solve, then the capture of the graph).
    """
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(batch, flow.shape[0], generator=g).to(device)
    c = Condition.from_labels(torch.randint(0, 10, (batch,), generator=g)).to(device)
    codec = ResidualCodec(flow, disc)
    with torch.inference_mode():
        s = _best_time(lambda: codec.decode_latent(r, c), repeats, device, warmup=2 if device.type == "cuda" else 1)
    return {"candidates_per_s": batch / s, "seconds": s, "gflop_per_s": batch * flops_call * disc.nfe / s / 1e9}


def roundtrip_by_precision(models, precisions: Sequence[str], device: torch.device, n: int | None = None) -> dict:
    """Relative round-trip error ``|decode(invert(z)) - z| / |z|`` of held-out digit latents per precision,
    and the decode's deviation from the float32 decode (median over ``n`` digits; default :data:`ROUNDTRIP_N`)."""
    from flowevo.domains.digits.data import images_to_tensor, load_builtin_digits

    n = ROUNDTRIP_N if n is None else n

    split = load_builtin_digits()
    x = images_to_tensor(split.test_images[:n]).to(device)
    c = Condition.from_labels(torch.as_tensor(split.test_labels[:n], dtype=torch.long)).to(device)
    out, ref = {}, None
    with torch.inference_mode():
        z = models.vae.encode(x)
        r = ResidualCodec(models.flow, FixedGrid("rk4", STEPS)).invert_latent(z, c)
        for p in precisions:
            codec = ResidualCodec(models.flow, FixedGrid("rk4", STEPS, precision=p))
            err = codec.roundtrip_error(z, c).double().cpu()
            dec = codec.decode_latent(r, c).double().cpu()
            ref = dec if ref is None else ref
            dev = ((dec - ref).norm(dim=1) / ref.norm(dim=1)).median()
            out[p] = {"median": float(err.median()), "mean": float(err.mean()), "max": float(err.max()),
                      "decode_vs_fp32_median": float(dev)}
    return out


def gpu_info(device: torch.device) -> dict:
    """The GPU's name, memory, compute capability, and the torch / CUDA / cuDNN versions."""
    if device.type != "cuda":
        return {"name": str(device), "memory_gib": None, "capability": None, "torch": torch.__version__, "cuda": None}
    props = torch.cuda.get_device_properties(device)
    return {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}", "multiprocessors": props.multi_processor_count,
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


def _end_to_end(models, seed: int, device: torch.device) -> dict:
    """The digits benchmark's REO at tau 0.9 on 200 sources x 24 residuals, 3 generations after generation 0."""
    from flowevo.domains.digits.counterfactuals import DigitCounterfactuals
    from flowevo.domains.digits.data import load_source_digits

    x, labels = load_source_digits(None, 200)
    targets = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(seed))
    cf = DigitCounterfactuals(models, x.to(device), labels.to(device), targets.to(device), seed, population=24,
                              generations=3)
    res = cf.reo(0.9)
    evaluations = float(res.evaluations_per_row.mean())
    return {"candidates_per_s": evaluations * len(x) / res.wall_s, "rows": len(x), "population": 24,
            "generations": 3, "wall_s": res.wall_s, "evaluations_per_row": evaluations,
            "includes": "the digits benchmark's REO at tau 0.9: flow decode (rk4 10), "
                        "VAE decode, CNN black box, pixel distance, survival"}


def run_throughput_benchmark(out_dir: Path | str, seed: int = 0, command: str | None = None, device: str = "cpu",
                             captures: Sequence[str] = CAPTURES) -> dict:
    """Decode throughput of the shipped digits flow per batch size vs the FLOP bound, and end-to-end REO.

    End to end is the digits benchmark's own REO (``DigitCounterfactuals.reo`` at tau 0.9: flow decode, VAE
    decode, CNN black box, pixel-distance objective, survival) on 200 sources x 24 residuals for
    3 generations after generation 0; candidates per second over the evolver's wall time.

    Args:
        device: ``cpu`` or ``cuda[:N]`` (see the module docstring for what each measures).
        captures: on CUDA, the capture modes compared at :data:`CAPTURE_CASES` (empty: none).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda[:N], got {device!r}")
    bad = [m for m in captures if m not in CAPTURES]
    if bad:
        raise ValueError(f"unknown capture mode(s) {bad}; use some of {list(CAPTURES)}")
    machine = machine_info(command or f"flowevo benchmark throughput --out {out_dir} --seed {seed}"
                                      + ("" if dev.type == "cpu" else f" --device {device}"))
    run = _run_cpu if dev.type == "cpu" else _run_device
    metrics = run(seed, dev, machine, captures)
    metrics["machine"]["load_average_end"] = load_average()
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _model_block(models, flops_call: int) -> dict:
    return {"class": type(models.flow).__name__, "flops_per_sample_per_call": flops_call,
            "solver": f"rk4, {STEPS} steps", "nfe": FixedGrid("rk4", STEPS).nfe}


def _run_cpu(seed: int, dev: torch.device, machine: dict, captures: Sequence[str]) -> dict:
    from flowevo.domains.digits.models import load_digit_models

    models = load_digit_models()
    disc = FixedGrid("rk4", STEPS)
    flops_call = linear_flops_per_sample(models.flow)
    rate_start, bf16_start = matmul_rate(), matmul_rate(precision="bf16")
    decode = {str(b): decode_rate(models.flow, b, disc, dev, seed + b, flops_call) for b in BATCHES}
    bf16 = {"1024": decode_rate(models.flow, 1024, FixedGrid("rk4", STEPS, precision="bf16"), dev, seed + 1024,
                                flops_call)}
    g = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        codec = ResidualCodec(models.flow, disc)
        # the same 4096 decodes in chunks of 1024 (a cache-size check: is one big batch slower per sample?)
        r, c = torch.randn(4096, 16, generator=g), Condition.from_labels(torch.randint(0, 10, (4096,), generator=g))
        s = _best_time(lambda: [codec.decode_latent(r[i:i + 1024], c[i:i + 1024]) for i in range(0, 4096, 1024)])
        chunked = {"batch": 4096, "chunk": 1024, "candidates_per_s": 4096 / s}
        # the black box (CNN) on one generation's images (200 x 24) at several chunk sizes
        images = torch.rand(4800, 28, 28, generator=g)
        black_box = {str(k): {"images_per_s": 4800 / _best_time(lambda k=k: [models.classifier(images[i:i + k])
                                                                             for i in range(0, 4800, k)], repeats=2)}
                     for k in (4096, 1024, 256)}
    rate_end, bf16_end = matmul_rate(), matmul_rate(precision="bf16")
    # the bound uses the best matmul rate seen (before and after the decodes): on a loaded machine
    # one measurement can land in a quiet or a busy moment; the best is the closest to the hardware
    rate, rate_bf16 = max(rate_start, rate_end), max(bf16_start, bf16_end)
    bound, bound_bf16 = rate / (flops_call * disc.nfe), rate_bf16 / (flops_call * disc.nfe)
    for r in [*decode.values(), chunked]:
        r["fraction_of_flop_bound"] = r["candidates_per_s"] / bound
    for r in bf16.values():
        r["fraction_of_flop_bound"] = r["candidates_per_s"] / bound_bf16
    roundtrip = roundtrip_by_precision(models, ("fp32", "bf16"), dev)
    e2e = _end_to_end(models, seed, dev)
    return {
        "benchmark": "throughput", "command": machine["command"], "device": "cpu",
        "model": _model_block(models, flops_call),
        "matmul_flops_per_s": rate, "matmul_flops_per_s_start_end": [rate_start, rate_end],
        "flop_bound_candidates_per_s": bound,
        "bf16": {"matmul_flops_per_s": rate_bf16, "matmul_flops_per_s_start_end": [bf16_start, bf16_end],
                 "flop_bound_candidates_per_s": bound_bf16, "decode": bf16},
        "roundtrip_rel_error": roundtrip,
        "throughput": {"decode": decode, "decode_chunked": chunked, "black_box_by_chunk": black_box,
                       "end_to_end_digits": e2e},
        "machine": machine,
    }


def _run_device(seed: int, dev: torch.device, machine: dict, captures: Sequence[str]) -> dict:
    """The CUDA run (any device runs it; the sizes are module constants)."""
    from flowevo.domains.digits.models import load_digit_models

    models = load_digit_models(device=dev)
    flops_call = linear_flops_per_sample(models.flow)
    nfe = FixedGrid("rk4", STEPS).nfe
    start = {p: matmul_rate(CUDA_MATMUL_N, MATMUL_SECONDS, dev, p) for p in PRECISIONS}
    decode: dict[str, dict] = {p: {} for p in PRECISIONS}
    for p in PRECISIONS:
        for b in CUDA_BATCHES:
            decode[p][str(b)] = decode_rate(models.flow, b, FixedGrid("rk4", STEPS, precision=p), dev, seed + b,
                                            flops_call, repeats=3 if b < 262144 else 2)
            _free(dev)  # each codec's graph pool goes with it
    by_capture: dict[str, dict] = {}
    for mode in captures:
        for p, b in CAPTURE_CASES:
            by_capture.setdefault(mode, {}).setdefault(p, {})[str(b)] = decode_rate(
                models.flow, b, FixedGrid("rk4", STEPS, capture=mode, precision=p), dev, seed + b, flops_call)
            _free(dev)
    end = {p: matmul_rate(CUDA_MATMUL_N, MATMUL_SECONDS, dev, p) for p in PRECISIONS}
    rates = {p: max(start[p], end[p]) for p in PRECISIONS}
    bounds = {p: rates[p] / (flops_call * nfe) for p in PRECISIONS}
    for p, rows in decode.items():
        for r in rows.values():
            r["fraction_of_flop_bound"] = r["candidates_per_s"] / bounds[p]
            r["fraction_of_fp32_bound"] = r["candidates_per_s"] / bounds["fp32"]
    for per in by_capture.values():
        for p, rows in per.items():
            for r in rows.values():
                r["fraction_of_flop_bound"] = r["candidates_per_s"] / bounds[p]
    roundtrip = roundtrip_by_precision(models, PRECISIONS, dev)
    try:
        e2e = _end_to_end(models, seed, dev)
    except Exception as exc:  # the digits benchmark on a device is not this benchmark's to fix: record, go on
        e2e = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "benchmark": "throughput", "command": machine["command"], "device": str(dev), "gpu": gpu_info(dev),
        "model": _model_block(models, flops_call),
        "matmul_flops_per_s": rates, "matmul_flops_per_s_start_end": {p: [start[p], end[p]] for p in PRECISIONS},
        "matmul_n": CUDA_MATMUL_N, "flop_bound_candidates_per_s": bounds,
        "default_capture": "auto (CUDA graph)" if dev.type == "cuda" else "auto (eager)",
        "roundtrip_rel_error": roundtrip,
        "throughput": {"decode": decode, "decode_by_capture": by_capture, "end_to_end_digits": e2e},
        "machine": machine,
    }


def _free(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def throughput_tables(metrics: dict) -> str:
    """Markdown: decode rate and fraction of the FLOP bound per batch (and precision); round trip; end-to-end REO."""
    if "gpu" in metrics:  # the device run (CUDA)
        return _cuda_tables(metrics)
    d = metrics["throughput"]["decode"]
    e2e, chunked = metrics["throughput"]["end_to_end_digits"], metrics["throughput"]["decode_chunked"]
    lines = [
        f"Matmul rate {metrics['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s (best of before / after the decodes; torch "
        f"threads: {metrics['machine'].get('torch_threads')}); "
        f"{metrics['model']['flops_per_sample_per_call'] / 1e6:.2f} MFLOP per sample per call x "
        f"NFE {metrics['model']['nfe']}: bound {metrics['flop_bound_candidates_per_s']:,.0f} decodes / s.", "",
        "| batch | " + " | ".join(d) + " |", "|---|" + "---:|" * len(d),
        "| decodes / s | " + " | ".join(f"{r['candidates_per_s']:,.0f}" for r in d.values()) + " |",
        "| fraction of the FLOP bound | " + " | ".join(f"{r['fraction_of_flop_bound']:.0%}" for r in d.values()) + " |",
        "", f"The same 4096 decodes in 4 chunks of 1024: {chunked['candidates_per_s']:,.0f} decodes / s "
            f"({chunked['fraction_of_flop_bound']:.0%} of the bound). CNN black box, images / s by chunk size: "
            + ", ".join(f"{k}: {v['images_per_s']:,.0f}"
                        for k, v in metrics["throughput"]["black_box_by_chunk"].items())
            + "."]
    if "bf16" in metrics:
        b = metrics["bf16"]
        r = b["decode"]["1024"]
        lines += ["", f"bfloat16 autocast at batch 1024: {r['candidates_per_s']:,.0f} decodes / s, "
                      f"{r['fraction_of_flop_bound']:.0%} of the bfloat16 bound (matmul "
                      f"{b['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s, "
                      f"bound {b['flop_bound_candidates_per_s']:,.0f} / s)."]
    if "roundtrip_rel_error" in metrics:
        lines += ["", _roundtrip_table(metrics["roundtrip_rel_error"])]
    lines += ["", f"End-to-end digits REO: {e2e['candidates_per_s']:,.0f} candidates / s ({e2e['rows']} sources x "
                  f"{e2e['population']} residuals, {e2e['generations']} generations after generation 0).", ""]
    return "\n".join(lines)


def _roundtrip_table(rt: dict) -> str:
    head = ["| precision | round trip, median | mean | max | decode vs fp32, median |", "|---|---:|---:|---:|---:|"]
    return "\n".join(head + [f"| {p} | {v['median']:.1e} | {v['mean']:.1e} | {v['max']:.1e} | "
                             f"{v['decode_vs_fp32_median']:.1e} |" for p, v in rt.items()])


def _cuda_tables(m: dict) -> str:
    g, rates, bounds = m["gpu"], m["matmul_flops_per_s"], m["flop_bound_candidates_per_s"]
    d = m["throughput"]["decode"]
    batches = list(next(iter(d.values())))
    lines = [f"{g['name']} ({g['memory_gib']} GiB), torch {g['torch']}, CUDA {g['cuda']}. Matmul rates (n = "
             f"{m['matmul_n']}, best of before / after): "
             + ", ".join(f"{p} {rates[p] / 1e12:.0f} TFLOP/s" for p in rates)
             + f"; {m['model']['flops_per_sample_per_call'] / 1e6:.2f} MFLOP per sample per call"
             f" x NFE {m['model']['nfe']}.",
             "", f"Decodes / s (share of the bound at that precision), capture {m['default_capture']}:", "",
             "| precision | " + " | ".join(f"{int(b):,}" for b in batches) + " |", "|---|" + "---:|" * len(batches)]
    for p, rows in d.items():
        lines.append(f"| {p} (bound {bounds[p]:,.0f}) | " + " | ".join(
            f"{r['candidates_per_s']:,.0f} ({r['fraction_of_flop_bound']:.0%})" for r in rows.values()) + " |")
    by = m["throughput"]["decode_by_capture"]
    if by:
        first = next(iter(by.values()))
        cols = [f"{p} {int(b):,}" for p, rows in first.items() for b in rows]
        lines += ["", "Capture modes, decodes / s (share of the bound):", "",
                  "| capture | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for mode, per in by.items():
            lines.append(f"| {mode} | " + " | ".join(f"{r['candidates_per_s']:,.0f} ({r['fraction_of_flop_bound']:.0%})"
                                                     for rows in per.values() for r in rows.values()) + " |")
    lines += ["", _roundtrip_table(m["roundtrip_rel_error"])]
    e2e = m["throughput"]["end_to_end_digits"]
    lines += ["", ("End-to-end digits REO on the GPU: " + (f"{e2e['candidates_per_s']:,.0f} candidates / s."
                                                          if "error" not in e2e else f"failed: `{e2e['error']}`")), ""]
    return "\n".join(lines)
