"""``run_cfo`` / ``resume_cfo``: constrained fine-tuning of a generic flow from a configuration.

A tiny generic model (4-D vectors, 3 classes) sampled under the null condition; reward: the free 4th feature
(max); constraint: the first feature <= 1 (about 45% of the pretrained samples violate it).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from flowevo.cfo import sample_flow
from flowevo.config import ConfigError, load_config
from flowevo.flow import FixedGrid
from flowevo.jsonio import read_json
from flowevo.workflows import is_cfo_run, resume_cfo, run_cfo
from flowevo.workflows.cfo_flow import is_cfo_round, load_round

HERE = Path(__file__).resolve()


def free_axis(candidates):
    """Reward: the 4th feature, which no class fixes."""
    return candidates.x[:, 3].double()


def first_axis(candidates):
    """Constraint: the first feature (class 0 sits at 3)."""
    return candidates.x[:, 0].double()


def sometimes_nan(candidates):
    """A reward whose black box fails (NaN) on every 5th sample."""
    r = candidates.x[:, 3].double().clone()
    r[::5] = float("nan")
    return r


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from flowevo.domains.generic import GenericTrainConfig, load_npz, save_model, train_generic

    root = tmp_path_factory.mktemp("cfo_model")
    rng = np.random.default_rng(0)
    c = np.arange(300) % 3
    x = rng.normal(size=(300, 4)) * 0.4 + 3.0 * np.eye(3, 4)[c]
    np.savez(root / "train.npz", x=x.astype(np.float32), c=c)
    data = load_npz(root / "train.npz")
    save_model(train_generic(data, GenericTrainConfig(steps=300, judge=False, seed=0).resolve(data),
                             show_progress=False), root / "model")
    return root / "model"


def _config(model_dir, run_dir, reward="free_axis", **over):
    flags = {"cfo.model": str(model_dir), "cfo.run_dir": str(run_dir),
             "cfo.reward": {"use": f"{HERE}:{reward}", "sense": "max"},
             "cfo.constraints": [{"use": f"{HERE}:first_axis", "upper": 1.0}], "cfo.rounds": 3, "cfo.samples": 128,
             "cfo.finetune_steps": 40, "cfo.batch_size": 64, "cfo.kl_samples": 32, "cfo.solver_steps": 4, "seed": 2}
    return load_config(flags={**flags, **{f"cfo.{k}": v for k, v in over.items()}})


@pytest.fixture(scope="module")
def full_run(model_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("cfo_run") / "run"
    return run, run_cfo(_config(model_dir, run), show_progress=False)


def test_run_writes_round_checkpoints_metrics_and_plot(full_run):
    run, m = full_run
    assert is_cfo_run(run)
    assert [p.name for p in sorted((run / "checkpoints").glob("round_*.pt"))] == [f"round_{k:03d}.pt" for k in range(4)]
    assert all(is_cfo_round(run / "checkpoints" / f"round_{k:03d}.pt") for k in range(4))
    assert (run / "rounds.png").stat().st_size > 0 and m["plot"] == "rounds.png"
    assert read_json(run / "metrics.json") == m
    assert [r["round"] for r in m["rounds"]] == [0, 1, 2, 3]
    for r in m["rounds"]:
        assert set(r["constraint_satisfaction"]) == set(r["multipliers"]) == set(r["rho"]) == {"first_axis"}
    assert all(r["ess"] > 0 for r in m["rounds"][:-1]) and m["rounds"][-1]["ess"] is None
    assert m["rounds"][0]["kl"] == 0 and all(r["kl"] > 0 for r in m["rounds"][1:])
    resolved = read_json(run / "config.resolved.json")
    assert Path(resolved["cfo"]["model"]).is_absolute() and resolved["cfo"]["rounds"] == 3
    # the fine-tuning did its job on this easy task: far fewer violations, higher reward
    pre, fin = m["pretrained"], m["final"]
    assert pre["satisfaction"] < 0.7 and fin["satisfaction"] >= 0.9
    assert fin["reward_mean"] > pre["reward_mean"] + 0.1


def test_a_round_checkpoint_samples_its_flow(full_run):
    run, _ = full_run
    means, sat = [], []
    for k in (0, 3):
        velocity, flow, condition, meta = load_round(run / "checkpoints" / f"round_{k:03d}.pt")
        assert meta["cfo"]["round"] == k and bool(condition.null_mask()[0])
        gen = torch.Generator().manual_seed(0)
        _, x = sample_flow(velocity, 400, condition, gen, FixedGrid("rk4", 4), flow.encoder)
        means.append(float(x[:, 3].mean()))
        sat.append(float((x[:, 0] <= 1.0).double().mean()))
    assert means[1] > means[0] + 0.1 and sat[1] > sat[0] + 0.2


def test_resume_after_deleting_the_last_rounds_reproduces_the_run(full_run, tmp_path):
    run, m = full_run
    killed = tmp_path / "killed"
    shutil.copytree(run, killed)
    for name in ("round_002.pt", "round_003.pt"):
        (killed / "checkpoints" / name).unlink()
    (killed / "metrics.json").unlink()
    resumed = resume_cfo(killed, show_progress=False)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_s"} for r in rs]  # noqa: E731
    assert strip(resumed["rounds"]) == strip(m["rounds"])
    assert resumed["checkpoints"] == m["checkpoints"]


def test_resume_refuses_a_changed_configuration(full_run, tmp_path):
    import json

    run, _ = full_run
    other = tmp_path / "other"
    shutil.copytree(run, other)
    cfg = json.loads((other / "config.resolved.json").read_text())
    cfg["cfo"]["anchor"] = 0.7
    (other / "config.resolved.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="another config"):
        resume_cfo(other, show_progress=False)
    with pytest.raises(ConfigError, match="cfo.rounds cannot change"):
        resume_cfo(run, show_progress=False, flags={"cfo.rounds": 5})


def test_failing_reward_marks_samples_infeasible_and_the_run_goes_on(model_dir, tmp_path):
    m = run_cfo(_config(model_dir, tmp_path / "nan", reward="sometimes_nan", rounds=1), show_progress=False)
    assert [r["failed"] for r in m["rounds"]] == [26, 26]  # every 5th of 128
    for r in m["rounds"]:  # a failed sample counts as a violation
        assert r["satisfaction"] <= 1 - 26 / 128 + 1e-12
        assert np.isfinite(r["reward_mean"])


@pytest.mark.parametrize("over, match", [
    ({"reward": {"use": "no_such_builtin", "sense": "max"}}, "unknown objective 'no_such_builtin'"),
    ({"reward": {"use": "distance_to_source"}}, "has no sources"),
    ({"reward": None}, "cfo.reward: required"),
    ({"condition": {"class": 9}}, "cfo.condition: unknown class id"),
    ({"constraints": [{"use": f"{HERE}:free_axis", "upper": 1.0}]}, "distinct names"),
    ({"anneal_from": 0.3, "anneal_rounds": 5}, "anneal_rounds <= rounds"),
    ({"project": True}, "cfo.project: the generic domain defines no projection"),
])
def test_bad_configuration_is_one_config_error(model_dir, tmp_path, over, match):
    cfg = _config(model_dir, tmp_path / "bad")
    data = cfg.model_dump(mode="json", by_alias=True)
    data["cfo"].update(over)
    if over.get("constraints"):
        data["cfo"]["reward"]["name"] = "free_axis"
    from flowevo.config import validate_config

    with pytest.raises(ConfigError, match=match) as info:
        run_cfo(validate_config(data), show_progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_a_model_no_domain_reads_is_an_error(tmp_path):
    cfg = _config(tmp_path / "missing", tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="missing: no such model folder"):
        run_cfo(cfg, show_progress=False)


def test_the_annealed_schedule_reaches_the_optimiser_from_the_config(model_dir):
    from flowevo.workflows.cfo import cfo_config

    cfg = cfo_config(_config(model_dir, Path("unused"), anneal_from=0.2, anneal_rounds=2))
    assert (cfg.anneal_from, cfg.anneal_rounds) == (0.2, 2)
    assert cfo_config(_config(model_dir, Path("unused"))).anneal_from is None


def test_the_archive_and_the_weight_floor_reach_the_optimiser_from_the_config(model_dir):
    from flowevo.workflows.cfo import cfo_config

    cfg = cfo_config(_config(model_dir, Path("unused"), replay=16, feasible_floor=0.05))
    assert (cfg.replay, cfg.feasible_floor) == (16, 0.05)
    plain = cfo_config(_config(model_dir, Path("unused")))
    assert (plain.replay, plain.feasible_floor) == (0, 0.0)
    with pytest.raises(Exception, match="feasible_floor"):
        cfo_config(_config(model_dir, Path("unused"), feasible_floor=1.0))
