"""The flow core on CUDA: stepper vs CPU, CUDA-graph decode vs eager, compiled decode, precisions.

Every test needs a CUDA device (``pytest -m gpu``); without one they are skipped.
"""

import copy

import pytest
import torch

from flowevo.flow import Condition, FixedGrid, GuidedVelocity, MLPVelocity, ODESolver, ResidualCodec
from flowevo.flow.stepper import STAGES

pytestmark = pytest.mark.gpu


def _net(value_dim=0, device="cuda"):
    torch.manual_seed(0)
    return MLPVelocity((16,), num_classes=10, value_dim=value_dim, hidden=128, depth=2).eval().to(device)


def _batch(n, seed, value_dim=0, device="cuda"):
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(n, 16, generator=g)
    c = Condition(
        labels=torch.randint(0, 10, (n,), generator=g),
        values=torch.randn(n, value_dim, generator=g) if value_dim else None,
    )
    return r.to(device), c.to(device)


@pytest.mark.parametrize("method", sorted(STAGES))
def test_stepper_on_cuda_matches_cpu(method):
    cpu, gpu = _net(device="cpu"), _net()
    r, c = _batch(512, 1, device="cpu")
    with torch.inference_mode():
        for t0, t1 in ((0.0, 1.0), (1.0, 0.0), (0.4, 1.0)):
            ref = ODESolver(FixedGrid(method, 10)).integrate(cpu, r, c, t0, t1)
            out = ODESolver(FixedGrid(method, 10, capture="none")).integrate(gpu, r.cuda(), c.to("cuda"), t0, t1)
            torch.testing.assert_close(out.cpu(), ref, rtol=1e-4, atol=1e-4)


def test_graph_decode_equals_eager_on_new_inputs_and_counts_honestly():
    net = _net()
    graph, eager = ResidualCodec(net, FixedGrid("rk4", 10)), ResidualCodec(net, FixedGrid("rk4", 10, capture="none"))
    with torch.inference_mode():
        for seed in range(4):  # eager, capture, replay, replay: each a new batch of the same shape
            r, c = _batch(1000, seed)
            x = eager.decode(r, c)
            torch.testing.assert_close(graph.decode(r, c), x, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(graph.invert(x, c), eager.invert(x, c), rtol=1e-5, atol=1e-5)
    assert graph.solver.captured.captures == 2  # one per direction
    assert graph.nfe == eager.nfe == 8 * 40


def test_graph_with_guidance_and_value_conditions():
    net = _net(value_dim=2)
    for model in (net, GuidedVelocity(net, 2.5)):
        graph = ResidualCodec(model, FixedGrid("midpoint", 6, capture="graph"), strength=0.6)
        eager = ResidualCodec(model, FixedGrid("midpoint", 6, capture="none"), strength=0.6)
        with torch.inference_mode():
            for seed in range(3):
                r, c = _batch(300, seed, value_dim=2)
                torch.testing.assert_close(graph.decode(r, c), eager.decode(r, c), rtol=1e-5, atol=1e-5)
        assert graph.solver.captured.captures == 1


def test_one_graph_per_shape_and_bad_conditions_still_raise():
    net = _net()
    codec = ResidualCodec(net, FixedGrid("rk4", 5))
    with torch.inference_mode():
        for n in (64, 64, 128, 128, 64):
            codec.decode(*_batch(n, n))
        assert codec.solver.captured.captures == 2
        r, c = _batch(64, 5)
        bad = Condition.from_labels(c.labels.clone().index_fill_(0, torch.tensor([3], device="cuda"), 12))
        with pytest.raises(ValueError, match=r"unknown class id\(s\) \[12\]"):
            codec.decode(r, bad)
        eager = ResidualCodec(net, FixedGrid("rk4", 5, capture="none"))
        torch.testing.assert_close(codec.decode(r, c), eager.decode(r, c), rtol=1e-5, atol=1e-5)


def test_graph_reads_weights_updated_in_place():
    net = _net()
    codec = ResidualCodec(net, FixedGrid("rk4", 4))
    r, c = _batch(256, 0)
    with torch.inference_mode():
        before = [codec.decode(r, c) for _ in range(3)][-1]  # captured by now
        for p in net.parameters():
            p.mul_(0.5)
        after = codec.decode(r, c)
        ref = ResidualCodec(net, FixedGrid("rk4", 4, capture="none")).decode(r, c)
    assert (after - before).abs().max() > 1e-3
    torch.testing.assert_close(after, ref, rtol=1e-5, atol=1e-5)


class _Syncing(torch.nn.Module):
    """A velocity that reads a value back to the host in its forward: it cannot be captured."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, t, c):
        scale = 1.0 + 0.0 * float(x.abs().max())
        return self.net(x, t, c) * scale


def test_a_velocity_that_cannot_be_captured():
    velocity = _Syncing(_net())
    r, c = _batch(128, 3)
    auto = ResidualCodec(velocity, FixedGrid("rk4", 4))
    eager = ResidualCodec(velocity, FixedGrid("rk4", 4, capture="none"))
    strict = ResidualCodec(velocity, FixedGrid("rk4", 4, capture="graph"))
    with torch.inference_mode():
        auto.decode(r, c)
        with pytest.warns(RuntimeWarning, match="could not be captured"):
            out = auto.decode(r, c)
        torch.testing.assert_close(out, eager.decode(r, c))
        torch.testing.assert_close(auto.decode(r, c), out)  # eager from then on, no second try
        strict.decode(r, c)
        stream = torch.cuda.current_stream()
        with pytest.raises(ValueError, match="capture='none'"):
            strict.decode(r, c)
        assert torch.cuda.current_stream() == stream
        fresh = ResidualCodec(_net(), FixedGrid("rk4", 4))  # graphs still work after a failed capture
        out = [fresh.decode(r, c) for _ in range(3)][-1]
        torch.testing.assert_close(out, ResidualCodec(_net(), FixedGrid("rk4", 4, capture="none")).decode(r, c))
    assert fresh.solver.captured.captures == 1 and auto.solver.captured.captures == 0


def test_autograd_decode_on_cuda_runs_eagerly_and_differentiates():
    codec = ResidualCodec(_net(), FixedGrid("rk4", 3, capture="graph"))
    r, c = _batch(32, 0)
    r.requires_grad_(True)
    for _ in range(2):
        codec.decode(r, c).square().sum().backward()
    assert r.grad is not None and r.grad.abs().sum() > 0 and codec.solver.captured.captures == 0


def test_precisions_roundtrip_bounded_and_tf32_flag_restored(toy16):
    toy, cpu_model = toy16
    model = copy.deepcopy(cpu_model).cuda()
    x, y = toy.sample(1024, torch.Generator().manual_seed(5))
    x, c = x.cuda(), Condition.from_labels(y).to("cuda")
    flag = torch.backends.cuda.matmul.allow_tf32
    err, out = {}, {}
    with torch.inference_mode():
        for p in ("fp32", "tf32", "bf16"):
            codec = ResidualCodec(model, FixedGrid("rk4", 10, precision=p))
            for _ in range(3):  # eager, captured, replayed
                err[p] = codec.roundtrip_error(x, c).median().item()
            out[p] = codec.decode(torch.zeros_like(x) + 0.5, c)
    assert torch.backends.cuda.matmul.allow_tf32 == flag
    assert err["fp32"] < 1e-3 and err["tf32"] < 5e-3 and err["bf16"] < 2e-2, err
    assert (out["tf32"] - out["fp32"]).abs().max() > 0  # TF32 was on inside the graph
    assert (out["bf16"] - out["fp32"]).abs().max() > (out["tf32"] - out["fp32"]).abs().max()
    assert all(o.dtype == torch.float32 for o in out.values())


@pytest.mark.slow
@pytest.mark.parametrize("capture", ["compile", "graph+compile"])
def test_compiled_decode_equals_eager(capture):
    net = _net()
    fast = ResidualCodec(net, FixedGrid("rk4", 10, capture=capture))
    eager = ResidualCodec(net, FixedGrid("rk4", 10, capture="none"))
    with torch.inference_mode():
        for seed in range(3):
            r, c = _batch(4096, seed)
            torch.testing.assert_close(fast.decode(r, c), eager.decode(r, c), rtol=1e-4, atol=1e-4)
    assert fast.solver.captured.compiles == 1 and fast.nfe == eager.nfe


def test_shipped_digits_codec_on_cuda():
    from flowevo.domains.digits.models import load_digit_models

    models = load_digit_models(device="cuda")
    r, c = _batch(4800, 7)
    with torch.inference_mode():
        default, eager = models.codec(), models.codec(FixedGrid("rk4", 10, capture="none"))
        images = [default.decode(r, c) for _ in range(3)][-1]
        torch.testing.assert_close(images, eager.decode(r, c), rtol=1e-5, atol=1e-5)
    assert images.shape == (4800, 28, 28) and images.is_cuda and default.solver.captured.captures == 1
