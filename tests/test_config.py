"""Configuration files, overrides and flags: precedence, and one-line errors naming the key."""

import json

import pytest
from typer.testing import CliRunner

from flowevo.cli import app
from flowevo.config import ConfigError, load_config, write_resolved
from flowevo.config.flags import parse_constraint_flag, parse_objective_flag, parse_target_flag

runner = CliRunner()

TOML = """
seed = 4
[train]
data = "d.npz"
steps = 100
[optimize]
target = { class = 2 }
generations = 7
[[optimize.objectives]]
use = "distance_to_source"
[[optimize.constraints]]
use = "pkg.mod:g"
per_item = true
upper = 0.5
"""


def test_file_then_set_then_flags(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(TOML)
    cfg = load_config(path)
    assert cfg.seed == 4 and cfg.train.steps == 100 and cfg.optimize.target.class_ == 2
    assert cfg.optimize.constraints[0].per_item and cfg.optimize.constraints[0].upper == 0.5
    cfg = load_config(path, ["optimize.generations=9", "train.encoder=\"pca\""], {"optimize.generations": 11})
    assert cfg.optimize.generations == 11 and cfg.train.encoder == "pca"  # flags beat --set beat the file
    cfg = load_config(path, ["optimize.generations=9"], {"optimize.generations": None})
    assert cfg.optimize.generations == 9  # an absent flag (None) overrides nothing
    out = write_resolved(cfg, tmp_path / "run")
    again = json.loads(out.read_text())
    assert again["optimize"]["target"] == {"class": 2, "values": None} and again["seed"] == 4


def test_yaml_and_json_files(tmp_path):
    pytest.importorskip("yaml")
    (tmp_path / "c.yaml").write_text("optimize:\n  generations: 3\n  target:\n    values: [0.5]\n")
    assert load_config(tmp_path / "c.yaml").optimize.target.values == [0.5]
    (tmp_path / "c.json").write_text(json.dumps({"train": {"steps": 5}}))
    assert load_config(tmp_path / "c.json").train.steps == 5


@pytest.mark.parametrize("text, words", [
    ("[optimize]\ngeneratons = 3\n", ["optimize.generatons", "unknown key", "generations"]),
    ("[optimize]\ngenerations = -1\n", ["optimize.generations", "greater than 0", "-1"]),
    ("[[optimize.objectives]]\nuse = 'x'\nsense = 'maximise'\n", ["optimize.objectives[0].sense", "'min' or 'max'", "maximise"]),
    ("[[optimize.constraints]]\nuse = 'x'\n", ["optimize.constraints[0]", "upper", "lower"]),
    ("[[optimize.objectives]]\nuse = 'x'\ncommand = ['p', '{input}']\n", ["exactly one of 'use'"]),
    ("[optimize]\ntarget = { klass = 2 }\n", ["optimize.target.klass", "unknown key", "class, values"]),
    ("[train]\nencoder = 'vae'\n", ["train.encoder", "'pca'", "vae"]),
    ("[[optimize.constraints]]\nuse = 'x'\nupper = nan\n", ["optimize.constraints[0].upper", "finite number"]),
    ("[optimize]\ntarget = { values = [inf] }\n", ["optimize.target.values[0]", "finite number"]),
    ("bogus = 1\n", ["bogus", "unknown key", "optimize"]),
    ("[train\n", ["cannot parse"]),
])
def test_bad_files_are_one_line_errors_naming_the_key(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


def test_bad_overrides_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found.*nope.toml"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="bad override 'optimize.generations'"):
        load_config(overrides=["optimize.generations"])
    with pytest.raises(ConfigError, match="optimize.population: Input should be a valid integer"):
        load_config(overrides=["optimize.population=many"])
    with pytest.raises(ConfigError, match="optimize.nope: unknown key"):
        load_config(overrides=["optimize.nope=1"])
    with pytest.raises(ConfigError, match="optimize.generations is a value"):
        load_config(overrides=["optimize.generations=1", "optimize.generations.x=2"])
    with pytest.raises(ConfigError, match="unknown config format '.ini'"):
        (tmp_path / "c.ini").write_text("")
        load_config(tmp_path / "c.ini")


def test_flag_shorthands():
    assert parse_objective_flag("scores.py:f@max,per_item,name=b,scale=2") == {
        "use": "scores.py:f", "sense": "max", "per_item": True, "name": "b", "params": {"scale": 2}}
    assert parse_objective_flag("cmd:python3 score.py {input}@min") == {
        "command": ["python3", "score.py", "{input}"], "sense": "min", "name": "score"}
    assert parse_constraint_flag("target_probability>=0.9") == {"use": "target_probability", "lower": 0.9}
    assert parse_constraint_flag("m:g@per_item<=1") == {"use": "m:g", "per_item": True, "upper": 1.0}
    assert parse_target_flag("3") == {"class": 3}
    assert parse_target_flag("values=0.5,1") == {"values": [0.5, 1.0]}
    for bad, fn in (("x", parse_constraint_flag), ("d@fast", parse_objective_flag), ("class=two", parse_target_flag)):
        with pytest.raises(ConfigError):
            fn(bad)


@pytest.mark.parametrize("args, words", [
    (["optimize", "--config", "nope.toml"], ["config file not found", "nope.toml"]),
    (["optimize", "--set", "optimize.generations"], ["bad override"]),
    (["optimize", "--set", "optimize.generations=0"], ["optimize.generations", "greater than 0"]),
    (["optimize", "--objective", "x@fastest"], ["unknown option 'fastest'"]),
    (["optimize", "--target", "class=two"], ["--target"]),
    (["optimize", "--run-dir", "r"], ["optimize.model: required", "--model"]),
    (["train", "--set", "train.steps=-3"], ["train.steps"]),
    (["train", "--out", "m"], ["train.data: required", "--data"]),
    (["optimize", "--generations", "abc"], ["--generations", "valid integer", "optimize --help"]),
    (["optimize", "--bogus"], ["No such option: --bogus"]),
    (["report"], ["Missing argument"]),
])
def test_cli_config_errors_exit_2_with_one_line(tmp_path, args, words):
    out = runner.invoke(app, args + ["--quiet"])
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output and out.output.strip().count("\n") == 0, out.output
    for w in words:
        assert w in out.output, (w, out.output)


def test_config_file_drives_the_cli(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\ndata = 'missing.npz'\nout = 'm'\n[optimize]\nbogus = 1\n")
    out = runner.invoke(app, ["train", "--config", str(path), "--quiet"])
    assert out.exit_code == 2 and "optimize.bogus: unknown key" in out.output
    path.write_text("[train]\ndata = 'missing.npz'\nout = 'm'\n")
    out = runner.invoke(app, ["train", "--config", str(path), "--quiet"])
    assert out.exit_code == 2 and "missing.npz" in out.output and "Traceback" not in out.output


def test_example_config_is_valid():
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[1] / "examples" / "blobs.toml")
    assert cfg.optimize.target.class_ == 3 and len(cfg.optimize.objectives) == 3
    assert cfg.optimize.constraints[0].per_item and cfg.optimize.constraints[0].upper == 6.0


def test_command_objectives_may_take_cif_payloads():
    spec = parse_objective_flag("cmd:python score.py {input}@min,payload_format=cif")
    cfg = load_config(flags={"optimize.objectives": [spec]})
    assert cfg.optimize.objectives[0].payload_format == "cif" and cfg.optimize.objectives[0].name == "score"
    with pytest.raises(ConfigError, match="payload_format"):
        load_config(flags={"optimize.objectives": [{**spec, "payload_format": "xyz"}]})
