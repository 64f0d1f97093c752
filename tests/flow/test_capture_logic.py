"""The solver's graph bookkeeping on the CPU, with a stand-in for the CUDA graph.

The stand-in "replays" by running the recorded solve again on the static buffers, so these tests
check what flowevo does around a graph (when to capture, one graph per shape, new inputs copied
in, outputs copied out, call counting, failures) without a GPU; tests/gpu checks real graphs.
"""

import warnings

import pytest
import torch

from flowevo.flow import Condition, FixedGrid, GuidedVelocity, MLPVelocity, ResidualCodec
from flowevo.flow import solver as solver_module
from flowevo.flow.capture import _Graph


class _Replay:
    def __init__(self, run):
        self.run = run

    def replay(self):
        self.run()


@pytest.fixture
def fake_graphs(monkeypatch):
    """Graph capture on the CPU: ``capture="graph"`` resolves as on CUDA; capturing records the solve."""
    recorded = []

    def capture(velocity, rest, x, k0, c):
        sx, sk, sc = x.clone(), k0.clone(), None if c is None else c._map(torch.clone)
        out = rest(sx, sk, sc)
        recorded.append(tuple(x.shape))
        return _Graph(velocity, _Replay(lambda: out.copy_(rest(sx, sk, sc))), sx, sk, sc, out)

    real = solver_module.resolve_capture
    monkeypatch.setattr(
        solver_module,
        "resolve_capture",
        lambda capture, device: (
            "none" if torch.is_grad_enabled() else ("graph" if capture in ("auto", "graph") else real(capture, device))
        ),
    )
    monkeypatch.setattr(solver_module, "capture_graph", capture)
    return recorded


def _setup(n, seed, value_dim=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), Condition(
        labels=torch.randint(0, 3, (n,), generator=g),
        values=torch.randn(n, value_dim, generator=g) if value_dim else None,
    )


def test_captured_on_second_solve_replays_new_inputs_and_copies_out(fake_graphs):
    torch.manual_seed(0)
    net = MLPVelocity((6,), num_classes=3, value_dim=1, hidden=16, depth=1).eval()
    for model in (net, GuidedVelocity(net, 2.0)):
        fake_graphs.clear()
        graph = ResidualCodec(model, FixedGrid("rk4", 5))
        eager = ResidualCodec(model, FixedGrid("rk4", 5, capture="none"))
        outs = []
        with torch.inference_mode():
            for seed in range(4):
                r, c = _setup(32, seed, value_dim=1)
                outs.append(graph.decode(r, c))
                torch.testing.assert_close(outs[-1], eager.decode(r, c), rtol=1e-6, atol=1e-6)
        assert fake_graphs == [(32, 6)] and graph.solver.captured.captures == 1
        assert outs[2].data_ptr() != outs[3].data_ptr() and not torch.equal(outs[2], outs[3])
        assert graph.nfe == eager.nfe == 4 * 20


def test_one_graph_per_shape_direction_and_bounded(fake_graphs):
    net = MLPVelocity((6,), num_classes=3, hidden=16, depth=1).eval()
    codec = ResidualCodec(net, FixedGrid("euler", 4))
    with torch.inference_mode():
        for n in (8, 8, 16, 16, 8, 24, 24, 32, 32, 40, 40):
            codec.decode(*_setup(n, n))
        x = codec.decode(*_setup(8, 1))
        codec.invert(x, _setup(8, 1)[1])
        codec.invert(x, _setup(8, 1)[1])
    assert fake_graphs == [(8, 6), (16, 6), (24, 6), (32, 6), (40, 6), (8, 6)]
    assert len(codec.solver.captured._graphs) == codec.solver.captured.size == 4


def test_checks_still_run_before_a_replay(fake_graphs):
    net = MLPVelocity((6,), num_classes=3, hidden=16, depth=1).eval()
    codec = ResidualCodec(net, FixedGrid("rk4", 3))
    r, c = _setup(10, 0)
    with torch.inference_mode():
        codec.decode(r, c)
        codec.decode(r, c)
        with pytest.raises(ValueError, match=r"unknown class id\(s\) \[9\]"):
            codec.decode(r, Condition.from_labels([9] + [0] * 9))


def test_weights_replaced_means_a_new_capture(fake_graphs):
    net = MLPVelocity((6,), num_classes=3, hidden=16, depth=1).eval()
    codec = ResidualCodec(net, FixedGrid("rk4", 3))
    r, c = _setup(10, 0)
    with torch.inference_mode():
        codec.decode(r, c)
        codec.decode(r, c)
        net.load_state_dict({k: v * 0.5 for k, v in net.state_dict().items()}, assign=True)  # new storage
        codec.decode(r, c)
        out = codec.decode(r, c)
        ref = ResidualCodec(net, FixedGrid("rk4", 3, capture="none")).decode(r, c)
    assert len(fake_graphs) == 2
    torch.testing.assert_close(out, ref)


def test_failed_capture_warns_under_auto_and_raises_under_graph(monkeypatch, fake_graphs):
    def broken(*args):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(solver_module, "capture_graph", broken)
    net = MLPVelocity((6,), num_classes=3, hidden=16, depth=1).eval()
    r, c = _setup(10, 0)
    auto, strict = ResidualCodec(net, FixedGrid("rk4", 3)), ResidualCodec(net, FixedGrid("rk4", 3, capture="graph"))
    ref = ResidualCodec(net, FixedGrid("rk4", 3, capture="none"))
    with torch.inference_mode():
        auto.decode(r, c)
        with pytest.warns(RuntimeWarning, match="runs eagerly"):
            out = auto.decode(r, c)
        torch.testing.assert_close(out, ref.decode(r, c))
        with warnings.catch_warnings(record=True) as later:
            warnings.simplefilter("always")
            auto.decode(r, c)  # no second try, no second warning
        assert later == [] and len(auto.solver.captured._failed) == 1
        strict.decode(r, c)
        with pytest.raises(ValueError, match="capture='none'"):
            strict.decode(r, c)
