"""``[optimize.evaluation]``: the same configured run on every backend gives the local backend's result.

- Dask: a module-wide ``LocalCluster`` on 127.0.0.1 with 2 workers (joined by ``address``), a user's
  objective imported by path in the workers whose row-0 chunk is slow (so later chunks overtake it,
  checked from its log), the judge's built-in shipped with its context; the run is killed after
  generation 1 and resumed from the command line on the same cluster; the final population equals the
  local run's.
- Processes: an external command objective (``cmd:``) on a 2-process pool with the cache on, killed and
  resumed from the command line (``flowevo resume``); equals the local run with the same command.
- ``flowevo optimize --backend dask --address ...`` (no code) equals the local run.

One cluster serves the module (a private cluster, ``--backend dask`` without ``--address``, is the same
``DaskEvaluator`` that ``tests/objectives/test_remote_backends.py`` starts).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from remote_objectives import overtaken
from typer.testing import CliRunner

from flowevo.cli import app
from flowevo.config import ConfigError, load_config
from flowevo.config.flags import parse_constraint_flag, parse_objective_flag, parse_target_flag
from flowevo.workflows import resume_optimize, run_optimize

pytest.importorskip("distributed")

HERE = Path(__file__).resolve().parent
HELPERS = HERE / "remote_objectives.py"
runner = CliRunner()
KEYS = ("residuals", "values", "violation", "origin", "donor_row", "row", "born", "pareto")

SCORE_SCRIPT = """
import json, sys
x = json.load(open(sys.argv[1]))["x"]
print("log line before the score")
print(json.dumps({"score": x[1] + 0.5 * x[2]}))
"""


class Killed(Exception):
    pass


def _kill_after(generation):
    def callback(evolver):
        if evolver.generation == generation:
            raise Killed

    return callback


def _dataset(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = np.arange(n) % 3
    x = rng.normal(size=(n, 4)) * 0.4 + 3.0 * np.eye(3, 4)[c]
    np.savez(path, x=x.astype(np.float32), c=c)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from flowevo.domains.generic import GenericTrainConfig, load_npz, save_model, train_generic

    root = tmp_path_factory.mktemp("backends")
    _dataset(root / "train.npz", 240, 0)
    _dataset(root / "sources.npz", 8, 1)
    model = train_generic(load_npz(root / "train.npz"), GenericTrainConfig(steps=150, judge_steps=60),
                          show_progress=False)
    save_model(model, root / "model")
    (root / "score.py").write_text(SCORE_SCRIPT)
    return root


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"}) as c:
        yield c


def _flags(root: Path, run: str, objectives: list[str], small: bool = False, **evaluation) -> dict:
    # 8 rows x 4 residuals = 32 candidates a generation: on 2 workers, chunks of 4 = one row each;
    # small: 4 rows x 2 residuals, 2 generations (one program start per candidate)
    flags = {"optimize.model": str(root / "model"), "optimize.sources": str(root / "sources.npz"),
             "optimize.run_dir": str(root / run), "optimize.target": parse_target_flag("2"),
             "optimize.objectives": [parse_objective_flag(o) for o in objectives],
             "optimize.constraints": [parse_constraint_flag("distance_to_source<=5")],
             "optimize.generations": 3, "optimize.population": 4, "seed": 3, "optimize.report": False}
    if small:
        flags.update({"optimize.rows": 4, "optimize.population": 2, "optimize.generations": 2})
    flags.update({f"optimize.evaluation.{k}": v for k, v in evaluation.items()})
    return flags


def _dask_objectives(root: Path, log: Path) -> list[str]:
    return ["target_probability", f"{HELPERS}:lift@max", f"{HELPERS}:staggered@min,name=staggered,log='{log}'"]


def _command_objectives(root: Path) -> list[str]:
    return [f"cmd:{sys.executable} -S {root / 'score.py'} {{input}}@max,name=score,payload_format=json,max_parallel=2",
            "target_probability"]


def _same_population(a_dir: Path, b_dir: Path) -> None:
    a, b = np.load(a_dir / "population.npz"), np.load(b_dir / "population.npz")
    for key in KEYS:
        assert np.array_equal(a[key], b[key]), key
    assert np.allclose(a["decoded"], b["decoded"], rtol=0, atol=0)


@pytest.fixture(scope="module")
def local_runs(workspace):
    """The reference: every objective scored in this process (one run per objective set)."""
    a = run_optimize(load_config(flags=_flags(workspace, "local_a", _dask_objectives(workspace, workspace / "a.log"))),
                     show_progress=False)
    b = run_optimize(load_config(flags=_flags(workspace, "local_b", _command_objectives(workspace), small=True)),
                     show_progress=False)
    return a, b


def test_dask_cluster_out_of_order_killed_and_resumed_by_cli_equals_local(workspace, cluster, local_runs):
    log = workspace / "dask.log"
    flags = _flags(workspace, "dask", _dask_objectives(workspace, log), backend="dask",
                   address=cluster.scheduler_address)
    with pytest.raises(Killed):
        run_optimize(load_config(flags=flags), show_progress=False, callbacks=[_kill_after(1)])
    assert not (workspace / "dask" / "metrics.json").exists()
    out = runner.invoke(app, ["resume", str(workspace / "dask"), "--address", cluster.scheduler_address, "--quiet",
                              "--json"])
    assert out.exit_code == 0, out.output
    m = json.loads(out.stdout)
    assert overtaken(str(log)) >= 1  # chunks submitted after the slow one finished before it
    assert overtaken(str(workspace / "a.log")) == 0  # in process: one call per batch
    assert len({line.split()[2] for line in log.read_text().splitlines()}) == 2  # both workers scored
    _same_population(workspace / "local_a", workspace / "dask")
    assert m["evaluation"] == {"backend": "dask", "workers": None, "address": cluster.scheduler_address,
                               "worker_restarts": 0}
    assert m["failures"] == 0 and m["best_values"] == local_runs[0]["best_values"]


def test_cli_optimize_on_a_dask_scheduler_needs_no_code(workspace, cluster, local_runs):
    log = workspace / "cli.log"
    args = ["optimize", "--model", workspace / "model", "--sources", workspace / "sources.npz", "--target", "2",
            "--run-dir", workspace / "cli", "--generations", 3, "--population", 4, "--seed", 3, "--no-report",
            "--constraint", "distance_to_source<=5", "--backend", "dask", "--address", cluster.scheduler_address,
            "--quiet", "--json"]
    for o in _dask_objectives(workspace, log):
        args += ["--objective", o]
    out = runner.invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["evaluation"]["backend"] == "dask"
    _same_population(workspace / "local_a", workspace / "cli")
    resolved = json.loads((workspace / "cli" / "config.resolved.json").read_text())
    assert resolved["optimize"]["evaluation"]["address"] == cluster.scheduler_address


def test_process_pool_command_objective_cached_killed_and_resumed_by_cli(workspace, local_runs):
    flags = _flags(workspace, "pool", _command_objectives(workspace), small=True, backend="processes", workers=2,
                   cache=True, timeout_s=30.0)
    with pytest.raises(Killed):
        run_optimize(load_config(flags=flags), show_progress=False, callbacks=[_kill_after(1)])
    stored = len((workspace / "pool" / "cache" / "cache.jsonl").read_text().splitlines())
    assert stored == 2 * 8 * 3  # generations 0 and 1, 8 candidates, 2 objectives + 1 constraint
    out = runner.invoke(app, ["resume", str(workspace / "pool"), "--quiet", "--json"])
    assert out.exit_code == 0, out.output
    m = json.loads(out.stdout)
    _same_population(workspace / "local_b", workspace / "pool")
    assert m["evaluation"]["backend"] == "processes" and m["evaluation"]["workers"] == 2
    assert m["evaluation"]["cache"]["misses"] + m["evaluation"]["cache"]["hits"] == 8  # the resumed generation
    assert m["failures"] == 0 and m["best_values"] == local_runs[1]["best_values"]


def test_bad_evaluation_settings_are_one_line_errors(workspace):
    with pytest.raises(ConfigError, match="'address' needs backend"):
        load_config(flags=_flags(workspace, "x", ["distance_to_source"], address="tcp://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="timeout_s' needs backend"):
        load_config(flags=_flags(workspace, "x", ["distance_to_source"], timeout_s=3.0))
    out = runner.invoke(app, ["optimize", "--model", str(workspace / "model"), "--backend", "cluster"])
    assert out.exit_code == 2 and "optimize.evaluation.backend" in out.output
    assert len(out.output.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="cannot change in a resumed run"):
        resume_optimize(workspace / "local_a", flags={"optimize.generations": 9})
