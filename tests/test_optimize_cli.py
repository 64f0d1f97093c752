"""Bring your own data: train -> optimize -> report on a synthetic user data set with objectives defined here.

Also: a run interrupted after a checkpoint and resumed ends exactly as the uninterrupted one,
and bad inputs exit with code 2 and one line.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from flowevo.cli import app
from flowevo.config import load_config
from flowevo.config.flags import parse_constraint_flag, parse_objective_flag, parse_target_flag
from flowevo.workflows import run_optimize

runner = CliRunner()
HERE = Path(__file__).resolve()


# -- the user's objectives (imported by the run as "<this file>:<name>") -------------------------
def lift_free_axis(candidates):
    """Vectorised: the 4th feature, which no class fixes (maximise it)."""
    return candidates.x[:, 3]


def always_fails(candidates):
    """A black box that is down."""
    raise RuntimeError("black box down")


def free_axis_cap(x):
    """Per item: the 4th feature of one sample (a constraint keeps it below a bound)."""
    return float(x[3])


def _dataset(path: Path, n: int = 300, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    c = np.arange(n) % 3
    x = rng.normal(size=(n, 4)) * 0.4 + 3.0 * np.eye(3, 4)[c]
    np.savez(path, x=x.astype(np.float32), c=c, class_names=np.array(["a", "b", "c"]))


def _invoke(*args):
    out = runner.invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, out.output
    return out


OBJECTIVES = ["target_probability", f"{HERE}:lift_free_axis@max,name=lift", "distance_to_source"]
CONSTRAINT = f"{HERE}:free_axis_cap@per_item<=1.5"


def _optimize_args(model, sources, run_dir):
    args = ["optimize", "--model", model, "--sources", sources, "--target", "2", "--run-dir", run_dir,
            "--rows", 5, "--generations", 5, "--population", 8, "--seed", 1, "--quiet", "--json"]
    for o in OBJECTIVES:
        args += ["--objective", o]
    return args + ["--constraint", CONSTRAINT]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("byod")
    _dataset(root / "train.npz")
    _dataset(root / "sources.npz", n=12, seed=1)
    out = _invoke("train", "--data", root / "train.npz", "--out", root / "model", "--steps", 300,
                  "--set", "train.judge_steps=120", "--quiet", "--json")
    summary = json.loads(out.stdout)
    out = _invoke(*_optimize_args(root / "model", root / "sources.npz", root / "run"))
    return root, summary, json.loads(out.stdout)


def test_train_writes_a_model_dir(workspace):
    root, summary, _ = workspace
    assert summary["encoder"]["kind"] == "none" and summary["num_classes"] == 3 and summary["steps"] == 300
    assert summary["judge"]["holdout_accuracy"] >= 0.9
    for f in ("model.json", "flow.pt", "encoder.pt", "judge.pt", "config.resolved.json", "training.png"):
        assert (root / "model" / f).stat().st_size > 0, f
    resolved = json.loads((root / "model" / "config.resolved.json").read_text())
    assert resolved["train"]["steps"] == 300 and resolved["train"]["judge_steps"] == 120
    assert resolved["train"]["batch_size"] == 256  # the automatic value, written out


def test_optimize_reaches_the_target_with_the_users_objective(workspace):
    root, _, m = workspace
    names = [o["name"] for o in m["objectives"]]
    assert names == ["target_probability", "lift", "distance_to_source"]
    assert [o["role"] for o in m["objectives"]] == ["alignment", "alignment", "preservation"]
    assert m["final_mean_best"][0] >= 0.9  # the judge reads the target class
    assert m["final_mean_best"][1] > m["initial_mean_best"][1] + 0.1  # the user's objective improved
    assert m["rows_feasible"] == 1.0 and m["failures"] == 0 and m["evaluations"] == 5 * 8 * 6
    src = np.load(root / "run" / "sources.npz")
    assert (src["best"][:, 3] <= 1.5 + 1e-9).all()  # the per-item constraint holds for every kept edit
    resolved = json.loads((root / "run" / "config.resolved.json").read_text())
    assert resolved["optimize"]["objectives"][1]["use"] == f"{HERE}:lift_free_axis"
    assert resolved["optimize"]["constraints"][0] == {**resolved["optimize"]["constraints"][0], "per_item": True, "upper": 1.5}
    assert Path(resolved["optimize"]["model"]).is_absolute()


def test_report_command_rewrites_the_report(workspace):
    root, _, _ = workspace
    run = root / "run"
    (run / "report.html").unlink()
    out = _invoke("report", run, "--json")
    assert json.loads(out.stdout)["report"].endswith("report.html")
    html = (run / "report.html").read_text()
    for anchor in ("summary", "objective-curves", "pareto-front", "lineage", "domain-view", "configuration"):
        assert f'id="{anchor}"' in html, anchor
    for png in ("curves.png", "pareto.png", "lineage.png"):
        assert f'src="{png}"' in html and (run / png).stat().st_size > 5000, png
    assert "lift_free_axis" in html and "free_axis_cap" in html  # the resolved config is in the page


def test_interrupted_then_resumed_equals_uninterrupted(workspace):
    root, _, _ = workspace
    flags = {"optimize.model": str(root / "model"), "optimize.sources": str(root / "sources.npz"),
             "optimize.run_dir": str(root / "killed"), "optimize.target": parse_target_flag("2"),
             "optimize.objectives": [parse_objective_flag(o) for o in OBJECTIVES],
             "optimize.constraints": [parse_constraint_flag(CONSTRAINT)], "optimize.rows": 5,
             "optimize.generations": 5, "optimize.population": 8, "seed": 1, "optimize.report": False}

    class Killed(Exception):
        pass

    def kill_after_gen_2(evolver):
        if evolver.generation == 2:
            raise Killed

    with pytest.raises(Killed):
        run_optimize(load_config(flags=flags), show_progress=False, callbacks=[kill_after_gen_2])
    assert not (root / "killed" / "metrics.json").exists()
    out = _invoke("resume", root / "killed", "--quiet", "--json")
    assert json.loads(out.stdout)["generations"] == 5
    a, b = np.load(root / "run" / "population.npz"), np.load(root / "killed" / "population.npz")
    for key in ("decoded", "residuals", "values", "violation", "origin", "donor_row", "row", "born", "pareto"):
        assert np.array_equal(a[key], b[key]), key
    la = json.loads((root / "run" / "lineage.json").read_text())
    lb = json.loads((root / "killed" / "lineage.json").read_text())
    assert la == lb and len(la) == 6


def test_bad_inputs_exit_2_with_one_line(workspace, tmp_path):
    root, _, _ = workspace
    base = ["optimize", "--model", root / "model", "--run-dir", tmp_path / "r", "--quiet"]
    np.savez(tmp_path / "no_c.npz", x=np.zeros((2, 4), np.float32))
    np.savez(tmp_path / "wide.npz", x=np.zeros((2, 5), np.float32), c=np.zeros(2, np.int64))
    np.savez(tmp_path / "bad_c.npz", x=np.zeros((2, 4), np.float32), c=np.array([0, 9]))
    cases = [
        (["--sources", root / "sources.npz", "--target", "7"], ["unknown class id(s) [7]"]),
        (["--sources", tmp_path / "no_c.npz", "--target", "1"], ["no_c.npz", "missing key 'c'"]),
        (["--sources", tmp_path / "bad_c.npz", "--target", "1"], ["bad_c.npz", "'c'", "unknown class id(s) [9]"]),
        (["--sources", tmp_path / "wide.npz", "--target", "1"], ["wide.npz", "shape (5,)", "(4,)"]),
        (["--sources", root / "sources.npz", "--target", "1", "--objective", "no_such_builtin"], ["unknown objective"]),
        (["--sources", root / "sources.npz", "--target", "values=0.5"], ["no float conditions"]),
        (["--sources", root / "sources.npz"], ["optimize.target: required"]),
        (["--sources", root / "sources.npz", "--target", "1", "--objective", f"{HERE}:nope"], ["has no attribute 'nope'"]),
        (["--sources", root / "sources.npz", "--target", "1", "--constraint", "distance_to_source<=4"],  # default objectives
         ["'distance_to_source']", "distinct names", "@name="]),
        (["--sources", root / "sources.npz", "--target", "1", "--constraint", "distance_to_source<=nan"],
         ["optimize.constraints[0].upper", "finite number"]),
    ]
    for extra, words in cases:
        out = runner.invoke(app, [str(a) for a in base + extra])
        assert out.exit_code == 2, (extra, out.output)
        assert "Traceback" not in out.output and out.output.strip().count("\n") == 0, out.output
        for w in words:
            assert w in out.output, (w, out.output)
    out = runner.invoke(app, ["report", str(tmp_path)])
    assert out.exit_code == 2 and "run.json" in out.output
    out = runner.invoke(app, ["optimize", "--model", str(tmp_path / "nomodel"), "--sources", str(root / "sources.npz"),
                              "--target", "1", "--run-dir", str(tmp_path / "r2"), "--quiet"])
    assert out.exit_code == 2 and "nomodel" in out.output
    out = runner.invoke(app, ["sample", "--model", str(root / "model" / "flow.pt"), "--n", "2", "--out", str(tmp_path / "s.npz")])
    assert out.exit_code == 2 and "generic MODEL_DIR" in out.output and not (tmp_path / "s.npz").exists()


def test_lagrangian_constraint_handling_from_a_set_override(workspace):
    root, _, _ = workspace
    args = _optimize_args(root / "model", root / "sources.npz", root / "lagrangian")
    out = _invoke(*args, "--set", 'optimize.constraint_handling="lagrangian"', "--no-report")
    m = json.loads(out.stdout)
    history = json.loads((root / "lagrangian" / "history.json").read_text())
    assert set(history[-1]["multipliers"]) == {"free_axis_cap"} and "free_axis_cap" in history[-1]["satisfaction"]
    assert m["final_mean_best"][0] >= 0.9 and not (root / "lagrangian" / "report.html").exists()


def test_a_failing_black_box_still_gives_a_run_and_report(workspace):
    root, _, _ = workspace
    out = _invoke("optimize", "--model", root / "model", "--sources", root / "sources.npz", "--target", "1",
                  "--objective", f"{HERE}:always_fails@min", "--objective", "distance_to_source", "--rows", 2,
                  "--generations", 1, "--population", 4, "--run-dir", root / "down", "--quiet", "--json")
    m = json.loads(out.stdout)
    assert m["failures"] == m["evaluations"] == 16 and m["rows_feasible"] == 0.0
    html = (root / "down" / "report.html").read_text()
    assert 'id="failures"' in html and "black box down" in html


@pytest.mark.parametrize("cmd", ["train", "optimize", "report", "resume"])
def test_help_shows_an_example(cmd):
    out = runner.invoke(app, [cmd, "--help"])
    assert out.exit_code == 0 and "Example: flowevo " + cmd in out.output


def test_python_api_matches(workspace):
    """The same run from Python gives the same numbers as the command line."""
    root, _, m = workspace
    flags = {"optimize.model": str(root / "model"), "optimize.sources": str(root / "sources.npz"),
             "optimize.run_dir": str(root / "api"), "optimize.target": {"class": 2},
             "optimize.objectives": [parse_objective_flag(o) for o in OBJECTIVES],
             "optimize.constraints": [parse_constraint_flag(CONSTRAINT)], "optimize.rows": 5,
             "optimize.generations": 5, "optimize.population": 8, "seed": 1, "optimize.report": False}
    api = run_optimize(load_config(flags=flags), show_progress=False)
    assert api["final_mean_best"] == m["final_mean_best"] and api["evaluations"] == m["evaluations"]
    assert torch.equal(torch.from_numpy(np.load(root / "api" / "population.npz")["values"]),
                       torch.from_numpy(np.load(root / "run" / "population.npz")["values"]))
