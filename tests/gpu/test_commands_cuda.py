"""Every command that runs a model, on CUDA against the CPU: one generation exactly, whole runs statistically.

``pytest -m gpu tests/gpu/test_commands_cuda.py`` (skipped without CUDA). Exact checks compare what is computed
from the same inputs (the same residuals decoded, generation 0 of a run, the same noise sampled, the swap edit):
equal within float tolerance. Statistical checks compare whole runs, whose random draws differ between devices
(a CUDA generator draws other numbers than a CPU one from the same seed): the same quality within seed spread.
Resuming across devices (cpu -> cuda, cuda -> cpu) continues with re-seeded draws and reaches the same quality.

``FLOWEVO_TEST_GPU_DEVICE=cpu pytest --noconftest tests/gpu/test_commands_cuda.py`` runs the same checks with the CPU
standing in for the GPU (a dry run of the test logic on a machine without CUDA).
"""

import json
import os
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from flowevo.cli import app
from flowevo.config import load_config
from flowevo.config.flags import parse_constraint_flag, parse_objective_flag, parse_target_flag
from flowevo.workflows import run_optimize

pytestmark = pytest.mark.gpu

DEV = os.environ.get("FLOWEVO_TEST_GPU_DEVICE", "cuda")
runner = CliRunner()
HERE = Path(__file__).resolve().parent
TOL = dict(rtol=1e-4, atol=1e-4)


def _invoke(*args):
    out = runner.invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout) if "--json" in args else out


def _dataset(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = np.arange(n) % 3
    x = rng.normal(size=(n, 4)) * 0.4 + 3.0 * np.eye(3, 4)[c]
    np.savez(path, x=x.astype(np.float32), c=c)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_commands")
    _dataset(root / "train.npz", 600, 0)
    _dataset(root / "sources.npz", 12, 1)
    _invoke("train", "--data", root / "train.npz", "--out", root / "model", "--steps", 400, "--set",
            "train.judge_steps=150", "--quiet", "--json")
    return root


def _flags(ws: Path, run: str, device: str, seed: int = 0, **over) -> dict:
    flags = {"optimize.model": str(ws / "model"), "optimize.sources": str(ws / "sources.npz"),
             "optimize.run_dir": str(ws / run), "optimize.target": parse_target_flag("2"),
             "optimize.objectives": [parse_objective_flag(o) for o in ("target_probability", "distance_to_source")],
             "optimize.constraints": [parse_constraint_flag("distance_to_source@name=near<=6")],
             "optimize.generations": 4, "optimize.population": 8, "seed": seed, "optimize.report": False,
             "optimize.device": device}
    flags.update(over)
    return flags


def _close(a: list[float], b: list[float], rel: float = 0.0) -> bool:
    """Means of two samples of runs agree within 3 standard errors of the difference (plus ``rel`` of the scale)."""
    sd = (statistics.pvariance(a) / len(a) + statistics.pvariance(b) / len(b)) ** 0.5
    return abs(statistics.mean(a) - statistics.mean(b)) <= 3 * sd + rel * max(abs(statistics.mean(a)), 1e-3) + 1e-6


# -- train ----------------------------------------------------------------------------------------
def test_train_on_the_device(ws):
    m = _invoke("train", "--data", ws / "train.npz", "--out", ws / "model_dev", "--steps", 400, "--set",
                "train.judge_steps=150", "--device", DEV, "--quiet", "--json")
    cpu = json.loads((ws / "model" / "model.json").read_text())
    assert json.loads((ws / "model_dev" / "config.resolved.json").read_text())["train"]["device"] == DEV
    assert m["judge"]["holdout_accuracy"] == cpu["judge"]["holdout_accuracy"]  # the judge trains on the CPU
    assert abs(m["final_loss"] - cpu["flow"]["final_loss"]) <= 0.25 * cpu["flow"]["final_loss"]
    assert m["roundtrip"]["rk4_10_median_rel_error"] < 1e-3


# -- optimize: exact ------------------------------------------------------------------------------
def test_optimize_generation_zero_and_decodes_match_the_cpu(ws):
    """Generation 0 with one residual per row (the source's own: no random draw) is the same on both devices, and
    the CPU run's final residuals decode on the device to the CPU's candidates."""
    ms = {dev: run_optimize(load_config(flags=_flags(ws, f"g0_{dev}", dev, **{"optimize.population": 1})),
                            show_progress=False) for dev in ("cpu", DEV)}
    hist = {dev: json.loads((ws / f"g0_{dev}" / "history.json").read_text())[0] for dev in ms}
    np.testing.assert_allclose(hist[DEV]["best"], hist["cpu"]["best"], **TOL)
    assert ms[DEV]["device"] == DEV

    from flowevo.workflows.domains import load_domain

    run_optimize(load_config(flags=_flags(ws, "exact_cpu", "cpu")), show_progress=False)
    pop = np.load(ws / "exact_cpu" / "population.npz")
    _, run = load_domain(load_config(flags=_flags(ws, "exact_dev", DEV)))
    assert run.codec.device.type == torch.device(DEV).type
    with torch.inference_mode():
        target = run.target.to(run.codec.device)[torch.from_numpy(pop["row"]).to(run.codec.device)]
        decoded = run.codec.decode(torch.from_numpy(pop["residuals"]).to(run.codec.device), target)
    np.testing.assert_allclose(decoded.cpu().numpy(), pop["decoded"], **TOL)


# -- optimize: statistically, and resume across devices ------------------------------------------
def test_optimize_whole_runs_match_the_cpu_statistically(ws):
    best = {dev: [run_optimize(load_config(flags=_flags(ws, f"stat_{dev}_{s}", dev, s)),
                               show_progress=False)["final_mean_best"] for s in range(3)] for dev in ("cpu", DEV)}
    for k in range(2):  # target probability, distance to source
        assert _close([b[k] for b in best[DEV]], [b[k] for b in best["cpu"]], rel=0.1), (k, best)


class Killed(Exception):
    pass


@pytest.mark.parametrize("first,then", [("cpu", DEV), (DEV, "cpu")])
def test_resume_on_the_other_device(ws, first, then):
    def kill(evolver):
        if evolver.generation == 2:
            raise Killed

    run = f"resume_{first}_{then}"
    with pytest.raises(Killed):
        run_optimize(load_config(flags=_flags(ws, run, first, 5)), show_progress=False, callbacks=[kill])
    m = _invoke("resume", ws / run, "--device", then, "--quiet", "--json")
    assert m["device"] == then and m["generations"] == 4 and m["failures"] == 0
    whole = run_optimize(load_config(flags=_flags(ws, run + "_whole", first, 5)), show_progress=False)
    assert m["final_mean_best"][0] >= whole["initial_mean_best"][0]  # kept what generations 0-2 found
    assert abs(m["final_mean_best"][0] - whole["final_mean_best"][0]) < 0.1
    assert abs(m["final_mean_best"][1] - whole["final_mean_best"][1]) < 0.25 * max(whole["final_mean_best"][1], 0.1)


def test_process_backend_with_a_device_run(ws):
    """Judge built-ins travel to CPU workers (their context moved to the CPU); the run completes without failures."""
    m = run_optimize(load_config(flags=_flags(ws, "pool_dev", DEV, **{"optimize.evaluation.backend": "processes",
                                                                       "optimize.evaluation.workers": 1})),
                     show_progress=False)
    local = run_optimize(load_config(flags=_flags(ws, "local_dev", DEV)), show_progress=False)
    assert m["failures"] == 0
    np.testing.assert_allclose(m["initial_mean_best"], local["initial_mean_best"], rtol=1e-4, atol=1e-5)


# -- sample ------------------------------------------------------------------------------------------
def test_sample_draws_the_same_noise_on_every_device(ws):
    from flowevo.domains.toy import ToyMixture, train_toy_flow
    from flowevo.flow import TrainConfig, save_checkpoint

    model = train_toy_flow(ToyMixture(dim=2, num_classes=3, modes=2, seed=0), config=TrainConfig(steps=200, seed=0))
    save_checkpoint(ws / "toy.pt", model, {"domain": "toy"})
    for dev in ("cpu", DEV):
        m = _invoke("sample", "--model", ws / "toy.pt", "--n", 256, "--out", ws / f"s_{dev}.npz", "--condition", "1",
                    "--device", dev, "--json")
        assert m["device"] == dev
    np.testing.assert_allclose(np.load(ws / f"s_{DEV}.npz")["x"], np.load(ws / "s_cpu.npz")["x"], **TOL)


# -- the flow adapter ----------------------------------------------------------------------------------
def test_adapted_outside_flow_on_the_device():
    from flowevo.flow import Condition, FixedGrid, ResidualCodec, VelocityAdapter

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.SiLU(), torch.nn.Linear(32, 3))

    def call(x, t, *, y):
        return net(torch.cat([x, t[:, None]], 1)) * (1 + y[:, None])

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, t, *, y):
            return call(x, t, y=y)

    adapted = VelocityAdapter(Net(), condition={"y": "labels"}, data_at=0, num_classes=2)
    r = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    c = Condition.from_labels(torch.arange(64) % 2)
    ref = ResidualCodec(adapted, FixedGrid("rk4", 8)).decode(r, c)
    dev = ResidualCodec(adapted.to(DEV), FixedGrid("rk4", 8))
    assert dev.device.type == torch.device(DEV).type
    with torch.inference_mode():
        out = dev.decode(r.to(DEV), c.to(DEV))
    np.testing.assert_allclose(out.cpu().numpy(), ref.detach().numpy(), **TOL)


# -- demos -----------------------------------------------------------------------------------------
def test_demo_toy_on_the_device_and_resume_on_the_cpu(ws):
    from flowevo.demos.toy import resume_toy_demo, run_toy_demo

    m = {dev: run_toy_demo(ws / f"toy_{dev}", generations=6, device=dev, show_progress=False) for dev in ("cpu", DEV)}
    for dev in m:
        assert m[dev]["final_mean_best"][0] < 0.5 * m[dev]["initial_mean_best"][0]  # toward the goal
    assert abs(m[DEV]["final_mean_best"][0] - m["cpu"]["final_mean_best"][0]) < 0.3
    again = resume_toy_demo(ws / f"toy_{DEV}", show_progress=False, device="cpu")  # nothing left: same result
    assert again["final_mean_best"] == m[DEV]["final_mean_best"]


def test_digits_swap_exact_and_reo_statistically():
    from flowevo.domains.digits.counterfactuals import DigitCounterfactuals
    from flowevo.domains.digits.data import load_source_digits
    from flowevo.domains.digits.models import load_digit_models

    x, labels = load_source_digits(None, 32)
    targets = (labels + 1 + torch.arange(32) % 9) % 10
    cfs = {dev: DigitCounterfactuals(load_digit_models(device=dev), x, labels, targets, 0, 12, 4)
           for dev in ("cpu", DEV)}
    swaps = {dev: cf.swap().best.decoded.cpu() for dev, cf in cfs.items()}
    np.testing.assert_allclose(swaps[DEV].numpy(), swaps["cpu"].numpy(), rtol=1e-3, atol=1e-3)
    acc = {dev: [cf.score(cf.kept(cf.reo(0.9, seed=s), 0.9)[0])["acc"] for s in (0, 1)] for dev, cf in cfs.items()}
    assert abs(statistics.mean(acc[DEV]) - statistics.mean(acc["cpu"])) <= 0.15, acc


def test_digits_demo_and_benchmark_commands(ws):
    demo = {dev: _invoke("demo", "digits", "--run-dir", ws / f"demo_{dev}", "--n", 12, "--generations", 3, "--device",
                         dev, "--quiet", "--json") for dev in ("cpu", DEV)}
    assert demo[DEV]["methods"]["swap"]["acc"] == demo["cpu"]["methods"]["swap"]["acc"]  # deterministic edit
    assert abs(demo[DEV]["methods"]["reo"]["acc"] - demo["cpu"]["methods"]["reo"]["acc"]) <= 0.25
    m = _invoke("benchmark", "digits", "--out", ws / "bench_dev", "--n", 12, "--ablation-seeds", 1, "--device", DEV,
                "--quiet", "--json")
    assert m["device"] == DEV
    assert set(m["methods"]) == {"leap", "reo", "gradient", "cma", "random", "swap"}
    assert (ws / "bench_dev" / "edits.npz").stat().st_size > 0


# -- the other benchmarks (small settings through their runners; the CLI adds --device only) ------------
def test_other_benchmarks_run_on_the_device(ws):
    from flowevo.benchmarks.constrained import run_constrained_benchmark
    from flowevo.benchmarks.cost_scaling import run_cost_benchmark
    from flowevo.benchmarks.profile import profile_decode
    from flowevo.benchmarks.query_efficiency import run_toy_queries
    from flowevo.benchmarks.toy import run_toy_benchmark

    toy = run_toy_benchmark(ws / "b_toy", rows=8, budget=64, device=DEV)
    assert toy["device"] == DEV and all(0.0 <= r["success_rate"] <= 1.0 for r in toy["methods"].values())
    assert toy["roundtrip_rel_error"]["rk4_10"]["mean"] < 1e-3
    cost = run_cost_benchmark(ws / "b_cost", populations=(4, 8), dims=(8, 16), rk4_steps=(1, 2), generations=1,
                              accuracy_samples=32, device=DEV)
    rk4 = cost["accuracy"]["curves"]["rk4"]
    assert cost["device"] == DEV and min(p["mean"] for p in rk4) < 1e-3 and len(cost["sweeps"]["population"]["points"]) == 2
    assert profile_decode(batch=256, repeats=2, device=DEV)["candidates_per_s"] > 0
    q = run_toy_queries([0], device=DEV)
    assert set(q["goals"]["success"]) == {"reo", "random", "cma"}
    c = run_constrained_benchmark(ws / "b_cfo", tasks=["synthetic"], rounds=1, samples=256, pretrain_steps=300,
                                  device=DEV)
    assert c["device"] == DEV and 0.0 <= c["runs"]["0"]["tasks"]["synthetic"]["cfo"]["constraint_satisfaction"] <= 1.0
