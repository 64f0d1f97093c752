"""Objectives from import strings: modules, files, per-item functions, factories and clear errors."""

import math

import pytest
import torch

from flowevo.objectives import Candidates, LocalEvaluator
from flowevo.objectives.resolve import callable_constraint, callable_objective, is_import_string, resolve_callable

USER_FILE = '''
import numpy as np

def mean_value(c):
    return c.x.flatten(1).mean(dim=1)

def moved(x, source):
    return float(np.abs(x - source).sum())

def picky(x):
    if x[0] > 0.5:
        raise RuntimeError("too big")
    return float(x[0])

def scaled(factor):
    return lambda c: factor * c.x[:, 0]
'''


@pytest.fixture()
def user_file(tmp_path):
    path = tmp_path / "user_scores.py"
    path.write_text(USER_FILE)
    return path


def _batch():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.25, 0.25]])
    return Candidates(x=x, source_index=torch.arange(3), sources=torch.zeros(3, 2))


def test_module_and_file_specs(user_file, tmp_path):
    assert resolve_callable("math:sqrt")(4.0) == 2.0
    assert resolve_callable("os.path:join")("a", "b") == "a/b"
    obj = callable_objective(f"{user_file}:mean_value", "max")
    assert obj.name == "mean_value" and obj(_batch()).tolist() == [0.5, 1.0, 0.25]
    rel = callable_objective("user_scores.py:mean_value", "max", base_dir=tmp_path)  # relative to base_dir
    assert rel(_batch()).tolist() == [0.5, 1.0, 0.25]
    assert is_import_string("a.b:c") and is_import_string("dir/f.py:g") and not is_import_string("distance_to_source")


def test_per_item_with_source_and_isolated_failures(user_file):
    moved = callable_objective(f"{user_file}:moved", "min", per_item=True)
    assert moved(_batch()).tolist() == [1.0, 2.0, 0.5]
    picky = callable_objective(f"{user_file}:picky", "min", per_item=True)
    ev = LocalEvaluator([picky]).__call__(_batch())
    assert ev.values[0, 0] == 0.0 and math.isnan(ev.values[1, 0]) and ev.values[2, 0] == 0.25
    assert [f.index for f in ev.failures] == [1] and "too big" in ev.failures[0].error


def test_factories_and_constraints(user_file):
    obj = callable_objective(f"{user_file}:scaled", "max", params={"factor": 3.0})
    assert obj(_batch()).tolist() == [0.0, 3.0, 0.75]
    lower = callable_constraint(f"{user_file}:mean_value", bound=0.4, lower=True)  # g >= 0.4
    g = lower(_batch())
    assert lower.violation(g).tolist() == pytest.approx([0.0, 0.0, 0.15])


@pytest.mark.parametrize("spec, words", [
    ("no_such_module_xyz:f", ["cannot import module", "no_such_module_xyz"]),
    ("math:no_such_fn", ["has no attribute", "no_such_fn"]),
    ("math:pi", ["not a function"]),
    ("missing_dir/none.py:f", ["no such file"]),
    ("just_a_name", ["not an import string"]),
])
def test_errors_name_the_spec(spec, words):
    with pytest.raises(ValueError) as err:
        resolve_callable(spec)
    for w in words:
        assert w in str(err.value)


def test_broken_user_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import no_such_thing_xyz\n")
    with pytest.raises(ValueError, match="importing .*broken.py failed: ModuleNotFoundError"):
        resolve_callable(f"{bad}:f")
