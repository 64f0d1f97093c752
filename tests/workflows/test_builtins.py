"""Specs -> objectives over the registered built-ins: the digits CNN and Morpho-MNIST built-ins on real digits,
bands, commands and clear errors."""

import pytest
import torch

from flowevo.config import ConstraintSpec, ObjectiveSpec
from flowevo.domains import BuiltinContext, builtins
from flowevo.flow import Condition
from flowevo.objectives import Candidates
from flowevo.workflows.builtins import build_constraint, build_objective


def _ctx(shape, kind="images"):
    return BuiltinContext("generic", kind, tuple(shape))


@pytest.fixture(scope="module")
def digits():
    from flowevo.domains.digits.data import load_builtin_digits

    split = load_builtin_digits()
    x = torch.from_numpy(split.test_images[:8]).float() / 255
    y = torch.from_numpy(split.test_labels[:8])
    return Candidates(x=x, source_index=torch.arange(8), sources=x, target=Condition.from_labels(y))


def test_digits_builtins_on_real_digits(digits):
    ctx = _ctx((28, 28))
    p = build_objective(ObjectiveSpec(use="digits.target_probability"), ctx)
    assert p.sense == "max" and float(p(digits).mean()) > 0.8  # the shipped CNN reads the true labels
    label = build_constraint(ConstraintSpec(use="digits.target_label", upper=0, params={"tau": 0.5}), ctx)
    assert float(label.violation(label(digits)).mean()) < 0.2
    thick = build_objective(ObjectiveSpec(use="digits.thickness", sense="min", params={"target": 2.0}), ctx)
    t = thick(digits)
    assert t.shape == (8,) and (t >= 0).all() and thick.name == "digits.thickness"
    raw = build_objective(ObjectiveSpec(use="digits.area", sense="max"), ctx)(digits)
    assert (raw > 20).all()  # pixels of ink


def test_builtin_errors_are_clear():
    with pytest.raises(ValueError, match="28x28"):
        build_objective(ObjectiveSpec(use="digits.target_probability"), _ctx((16, 16)))
    with pytest.raises(ValueError, match="give a sense"):
        build_objective(ObjectiveSpec(use="digits.width"), _ctx((28, 28)))
    with pytest.raises(ValueError, match="judge = false"):
        build_objective(ObjectiveSpec(use="target_probability"), _ctx((4,), "vectors"))
    with pytest.raises(ValueError, match="bad params"):
        build_objective(ObjectiveSpec(use="distance_to_source", params={"p": 1}), _ctx((4,), "vectors"))
    with pytest.raises(ValueError, match="needs a crystal model"):
        build_objective(ObjectiveSpec(use="crystals.sites_changed"), _ctx((4,), "vectors"))
    with pytest.raises(ValueError, match="unknown objective 'nope'"):
        build_objective(ObjectiveSpec(use="nope", sense="min"), _ctx((4,), "vectors"))
    assert {"distance_to_source", "target_probability", "digits.thickness", "crystals.budget"} <= set(builtins())


def test_bands_and_commands(tmp_path):
    b = Candidates(x=torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]), source_index=torch.arange(3),
                   sources=torch.zeros(3, 2))
    ctx = _ctx((2,), "vectors")
    band = build_constraint(ConstraintSpec(use="distance_to_source", lower=1.0, upper=6.0), ctx)
    assert band.violation(band(b)).tolist() == [1.0, 0.0, 4.0]
    script = tmp_path / "score.py"
    script.write_text("import sys, numpy as np\nprint(float(np.load(sys.argv[1])['x'].sum()))\n")
    import sys

    cmd = build_objective(ObjectiveSpec(command=[sys.executable, str(script), "{input}"], name="total", sense="max"), ctx)
    assert cmd(b).tolist() == [0.0, 7.0, 14.0]


def test_a_cheap_builtin_makes_its_spec_cheap():
    """The crystals' validity and budget built-ins are cheap (pre-screening calls them exactly); others are not
    unless the spec says so."""
    table = builtins()
    assert table["crystals.budget"].cheap and table["crystals.structure_valid"].cheap
    assert not table["distance_to_source"].cheap and not table["crystals.surrogate"].cheap
    ctx = BuiltinContext(kind="crystals", data_kind="vectors", shape=(56,),
                         extra={"representation": None, "source_structures": []})
    assert build_constraint(ConstraintSpec(use="crystals.budget", params={"budget": "k2"}, upper=0), ctx).cheap
    assert build_constraint(ConstraintSpec(use="crystals.composition_valid", upper=0), ctx).cheap
    plain = _ctx((4,), "vectors")
    assert not build_constraint(ConstraintSpec(use="distance_to_source", upper=1.0), plain).cheap
    assert build_constraint(ConstraintSpec(use="distance_to_source", upper=1.0, cheap=True), plain).cheap
