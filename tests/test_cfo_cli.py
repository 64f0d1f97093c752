"""``flowevo cfo`` from a config file and flags, ``flowevo sample`` from any round, ``flowevo resume`` of a cfo run,
and one-line errors (exit 2) for input that cannot be resolved."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flowevo.cli import app

runner = CliRunner()
HERE = Path(__file__).resolve()


def free_axis(candidates):
    """Reward: the 4th feature (max)."""
    return candidates.x[:, 3]


def first_axis(x):
    """Per item: the first feature of one sample (a constraint keeps it <= 1)."""
    return float(x[0])


def _invoke(*args, code=0):
    out = runner.invoke(app, [str(a) for a in args])
    assert out.exit_code == code, out.output
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cfo_cli")
    rng = np.random.default_rng(0)
    c = np.arange(300) % 3
    x = rng.normal(size=(300, 4)) * 0.4 + 3.0 * np.eye(3, 4)[c]
    np.savez(root / "train.npz", x=x.astype(np.float32), c=c)
    _invoke("train", "--data", root / "train.npz", "--out", root / "model", "--steps", 300,
            "--set", "train.judge=false", "--quiet", "--json")
    (root / "cfo.toml").write_text(f"""
seed = 4

[cfo]
model = "{root / 'model'}"
run_dir = "{root / 'run'}"
rounds = 5
samples = 128
finetune_steps = 40
batch_size = 64
kl_samples = 32
solver_steps = 4
reward = {{ use = "{HERE}:free_axis", sense = "max" }}

[[cfo.constraints]]
use = "{HERE}:first_axis"
per_item = true
upper = 1.0
""")
    out = _invoke("cfo", "--config", root / "cfo.toml", "--rounds", 2, "--quiet", "--json")
    return root, json.loads(out.stdout)


def test_config_file_with_flags_overriding(workspace):
    root, m = workspace
    run = root / "run"
    assert len(m["rounds"]) == 3 and m["seed"] == 4  # --rounds 2 beat the file's 5
    assert json.loads((run / "config.resolved.json").read_text())["cfo"]["rounds"] == 2
    assert m["checkpoints"] == [f"checkpoints/round_{k:03d}.pt" for k in range(3)]
    assert (run / "rounds.png").is_file() and json.loads((run / "metrics.json").read_text()) == m
    assert m["final"]["satisfaction"] > m["pretrained"]["satisfaction"]
    assert m["final"]["reward_mean"] > m["pretrained"]["reward_mean"]


def test_sample_works_from_every_round(workspace, tmp_path):
    root, _ = workspace
    figures = []
    for k in range(3):
        out = tmp_path / f"r{k}.npz"
        info = json.loads(_invoke("sample", "--model", root / "run" / "checkpoints" / f"round_{k:03d}.pt", "--n", 300,
                                  "--out", out, "--steps", 4, "--quiet", "--json").stdout)
        assert info["cfo_round"] == k and info["domain"] == "generic" and info["x_shape"] == [300, 4]
        x = np.load(out)["x"]
        figures.append((x[:, 3].mean(), (x[:, 0] <= 1).mean()))
    assert figures[2][0] > figures[0][0] and figures[2][1] > figures[0][1]
    _invoke("sample", "--model", root / "run" / "checkpoints" / "round_001.pt", "--n", 10, "--out", tmp_path / "c.npz",
            "--condition", 1, "--quiet")


def test_resume_continues_a_cfo_run_to_the_same_result(workspace):
    root, m = workspace
    run = root / "run"
    (run / "checkpoints" / "round_002.pt").unlink()
    (run / "metrics.json").unlink()
    resumed = json.loads(_invoke("resume", run, "--quiet", "--json").stdout)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_s"} for r in rs]  # noqa: E731
    assert strip(resumed["rounds"]) == strip(m["rounds"])
    assert (run / "checkpoints" / "round_002.pt").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--reward", "no_such_reward@max"], "unknown objective 'no_such_reward'"),
    (["--reward", f"{HERE}:nothing_here@max"], "nothing_here"),
    (["--model", "no/such/model"], "no such model folder"),
    (["--constraint", "first_axis=3"], "expected SPEC<=BOUND"),
    (["--set", "cfo.samples=1"], "cfo.samples"),
])
def test_unresolvable_input_exits_2_with_one_line(workspace, tmp_path, extra, message):
    root, _ = workspace
    args = ["cfo", "--config", root / "cfo.toml", "--run-dir", tmp_path / "bad", "--quiet", *extra]
    out = _invoke(*args, code=2)
    lines = [line for line in out.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], out.output


def test_resume_of_a_cfo_run_keeps_its_device(workspace):
    root, _ = workspace
    out = _invoke("resume", root / "run", "--device", "cpu", "--quiet", code=2)
    assert "own device" in out.output


def test_help_shows_an_example():
    out = _invoke("cfo", "--help")
    assert "Example: flowevo cfo" in out.output
