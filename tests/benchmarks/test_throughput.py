"""FLOP counting for the throughput bound."""

from torch import nn

from flowevo.benchmarks.throughput import linear_flops_per_sample, matmul_rate
from flowevo.flow import MLPVelocity


def test_linear_flops_count_every_linear_layer():
    assert linear_flops_per_sample(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))) == 2 * (15 + 10)
    net = MLPVelocity((4,), num_classes=2, hidden=8, depth=1, time_dim=4)
    # input (4 + 4 time features -> 8), one block of two (8 -> 8), output (8 -> 4); the label embedding has no Linear
    assert linear_flops_per_sample(net) == 2 * (8 * 8 + 2 * 8 * 8 + 8 * 4)


def test_matmul_rate_is_measured():
    assert matmul_rate(n=128, seconds=0.05) > 1e6


def test_matmul_rate_per_precision_on_cpu():
    import torch

    assert matmul_rate(n=128, seconds=0.05, precision="bf16") > 1e6
    assert matmul_rate(n=128, seconds=0.05, device=torch.device("cpu"), precision="tf32") > 1e6


def test_device_run_smoke_on_cpu(tmp_path, monkeypatch):
    """The CUDA run's code path with tiny sizes on the CPU (no CUDA events, no graphs): shapes, shares,
    round trip per precision, tables, and the GPU check's summary script."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import torch

    from flowevo.benchmarks import throughput as tp
    from flowevo.benchmarks.machine import machine_info

    monkeypatch.setattr(tp, "CUDA_BATCHES", (64, 128))
    monkeypatch.setattr(tp, "CUDA_MATMUL_N", 128)
    monkeypatch.setattr(tp, "MATMUL_SECONDS", 0.05)
    monkeypatch.setattr(tp, "CAPTURE_CASES", (("fp32", 64), ("tf32", 128)))
    monkeypatch.setattr(tp, "ROUNDTRIP_N", 48)

    def no_e2e(*args):
        raise RuntimeError("not on this device")

    monkeypatch.setattr(tp, "_end_to_end", no_e2e)
    m = tp._run_device(0, torch.device("cpu"), machine_info("test"), ("none",))
    d = m["throughput"]["decode"]
    assert list(d) == ["fp32", "tf32", "bf16"] and list(d["fp32"]) == ["64", "128"]
    for p, rows in d.items():
        for r in rows.values():
            assert r["candidates_per_s"] > 0
            assert r["fraction_of_flop_bound"] == r["candidates_per_s"] / m["flop_bound_candidates_per_s"][p]
    assert list(m["throughput"]["decode_by_capture"]["none"]) == ["fp32", "tf32"]
    rt = m["roundtrip_rel_error"]
    assert rt["fp32"]["median"] < 1e-3 and rt["fp32"]["decode_vs_fp32_median"] == 0.0
    assert rt["bf16"]["median"] > rt["fp32"]["median"] and rt["bf16"]["decode_vs_fp32_median"] > 0
    assert m["throughput"]["end_to_end_digits"] == {"error": "RuntimeError: not on this device"}
    tables = tp.throughput_tables(m)
    assert "| fp32 (bound" in tables and "| none |" in tables and "| bf16 |" in tables and "failed" in tables
    (tmp_path / "throughput").mkdir()
    (tmp_path / "throughput" / "metrics.json").write_text(json.dumps(m))
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "summary.py"
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=True)
    out = run.stdout
    assert "BAR fp32 decode at batch 4,096" in out and "-> n/a" in out and "fastest: none" in out
    assert "BAR tf32 decode at batch >= 65,536" in out and "digits --device cuda / cpu: not run" in out


def test_throughput_rejects_bad_device_and_capture(tmp_path):
    import pytest

    from flowevo.benchmarks.throughput import run_throughput_benchmark

    with pytest.raises(ValueError, match="cpu or cuda"):
        run_throughput_benchmark(tmp_path, device="mps")
    with pytest.raises(ValueError, match="unknown capture"):
        run_throughput_benchmark(tmp_path, captures=("graphs",))
