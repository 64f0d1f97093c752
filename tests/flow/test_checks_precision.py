"""Condition checks once per solve (not per stage), precision options and capture options on the CPU."""

import threading

import pytest
import torch

from flowevo.flow import Adaptive, Condition, ConditionEmbedding, FixedGrid, GuidedVelocity, MLPVelocity, ODESolver, ResidualCodec
from flowevo.flow.condition import condition_checks_enabled, unchecked_conditions


@pytest.fixture
def count_validate(monkeypatch):
    calls = []
    original = ConditionEmbedding.validate

    def counted(self, c):
        calls.append(len(c))
        return original(self, c)

    monkeypatch.setattr(ConditionEmbedding, "validate", counted)
    return calls


def _net():
    torch.manual_seed(0)
    return MLPVelocity((8,), num_classes=3, value_dim=1, hidden=32, depth=1).eval()


def _cond(n, labels=None):
    g = torch.Generator().manual_seed(n)
    labels = torch.randint(0, 3, (n,), generator=g) if labels is None else torch.as_tensor(labels)
    return Condition(labels=labels, values=torch.randn(n, 1, generator=g))


@pytest.mark.parametrize("disc", [FixedGrid("rk4", 10), FixedGrid("euler", 7), Adaptive("dopri5", 1e-4, 1e-4)], ids=str)
def test_condition_checked_once_per_solve_not_per_stage(count_validate, disc):
    net, c = _net(), _cond(16)
    codec = ResidualCodec(net, disc)
    with torch.inference_mode():
        codec.decode(torch.randn(16, 8), c)
        assert codec.nfe > 5 and count_validate == [16]
        codec.roundtrip_error(torch.randn(16, 8), c)
    assert count_validate == [16] * 3  # decode; invert + decode
    net(torch.randn(16, 8), torch.rand(16), c)  # a direct call checks every time
    assert count_validate == [16] * 4


@pytest.mark.parametrize("disc", [FixedGrid("rk4", 4), Adaptive("dopri5", 1e-4, 1e-4)], ids=str)
def test_unknown_class_is_still_a_clear_error_at_every_entry_point(disc):
    net, bad = _net(), _cond(4, labels=[0, 1, 5, 2])
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"unknown class id\(s\) \[5\]"):
        ODESolver(disc).integrate(net, x, bad, 0.0, 1.0)
    with pytest.raises(ValueError, match="unknown class"):
        ResidualCodec(GuidedVelocity(net, 2.0), disc).decode(x, bad)
    with pytest.raises(ValueError, match="unknown class"):
        net(x, torch.rand(4), bad)
    assert condition_checks_enabled()  # an error inside a solve leaves the checks on


def test_unchecked_conditions_is_scoped_and_per_thread():
    nan = torch.tensor([[float("nan")]])
    seen = []
    with unchecked_conditions():
        Condition.from_values(nan)  # no check inside
        t = threading.Thread(target=lambda: seen.append(condition_checks_enabled()))
        t.start()
        t.join()
        with pytest.raises(RuntimeError), unchecked_conditions():
            raise RuntimeError("boom")
        assert not condition_checks_enabled()  # the inner scope restored the outer one
    assert seen == [True] and condition_checks_enabled()
    with pytest.raises(ValueError, match="NaN"):
        Condition.from_values(nan)


def test_conditions_derived_from_checked_ones_do_not_recheck_values(monkeypatch):
    c = _cond(6)
    calls = []
    original = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: calls.append(1) or original(t))
    derived = [
        c[1:3],
        c[torch.tensor([0, 2])],
        Condition.cat([c, c]),
        Condition.null_like(c),
        c.with_null(torch.zeros(6, dtype=torch.bool)),
        c.repeat_interleave(2),
        c.to("cpu"),
    ]
    assert calls == [] and [len(d) for d in derived] == [2, 2, 12, 6, 6, 12, 6]
    Condition(values=torch.zeros(2, 1))  # a condition the caller builds is checked
    assert calls == [1]


@pytest.mark.parametrize(
    "bad",
    [
        lambda: FixedGrid("rk4", 10, capture="cuda"),
        lambda: FixedGrid(precision="fp16"),
        lambda: FixedGrid(precision="bfloat16"),
    ],
)
def test_capture_and_precision_are_typed(bad):
    with pytest.raises(ValueError, match="use one of"):
        bad()


def test_graph_capture_on_cpu_is_a_clear_error():
    codec = ResidualCodec(_net(), FixedGrid("rk4", 4, capture="graph"))
    with torch.inference_mode(), pytest.raises(ValueError, match="needs a CUDA device"):
        codec.decode(torch.randn(3, 8), _cond(3))


def test_precisions_on_cpu(toy16):
    toy, model = toy16
    x, y = toy.sample(256, torch.Generator().manual_seed(11))
    c = Condition.from_labels(y)
    err, out = {}, {}
    with torch.inference_mode():
        for p in ("fp32", "tf32", "bf16"):
            codec = ResidualCodec(model, FixedGrid("rk4", 10, precision=p))
            err[p] = codec.roundtrip_error(x, c).median().item()
            out[p] = codec.decode(torch.randn(64, 16, generator=torch.Generator().manual_seed(1)), c[:64])
    assert all(o.dtype == torch.float32 for o in out.values())  # bf16 autocast inside, float32 state and output
    assert torch.equal(out["tf32"], out["fp32"])  # no TF32 mode on the CPU
    assert err["fp32"] < 1e-3
    assert err["fp32"] < err["bf16"] < 2e-2  # bf16 is on (coarser) and still close
    rel = ((out["bf16"] - out["fp32"]).norm(dim=1) / out["fp32"].norm(dim=1)).median()
    assert 1e-5 < rel < 2e-2


def test_capture_is_eager_while_autograd_records():
    net, c = _net(), _cond(5)
    codec = ResidualCodec(net, FixedGrid("rk4", 3, capture="compile"))
    r = torch.randn(5, 8, requires_grad=True)
    for _ in range(2):
        codec.decode(r, c).square().sum().backward()
    assert r.grad is not None and r.grad.abs().sum() > 0
    assert codec.solver.captured.compiles == 0


@pytest.mark.slow
def test_compiled_decode_equals_eager_and_counts_honestly():
    net = _net()
    eager = ResidualCodec(net, FixedGrid("rk4", 5, capture="none"))
    compiled = ResidualCodec(net, FixedGrid("rk4", 5, capture="compile"))
    with torch.inference_mode():
        for seed in (1, 2, 3):  # first solve eager, then compiled (a new batch each time)
            r, c = torch.randn(64, 8, generator=torch.Generator().manual_seed(seed)), _cond(64)
            torch.testing.assert_close(compiled.decode(r, c), eager.decode(r, c), rtol=1e-5, atol=1e-5)
    assert compiled.solver.captured.compiles == 1
    assert compiled.nfe == eager.nfe == 3 * 20
