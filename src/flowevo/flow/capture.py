"""Captured fixed-grid solves: a CUDA graph per (velocity, batch shape, grid), and/or ``torch.compile``.

A fixed-grid decode is ``steps x stages`` velocity calls of a dozen small kernels each; at the
batch sizes evolution uses, launching them costs more than running them. Capture modes:

- ``none``: the eager stepper.
- ``graph``: the stepper's kernels recorded once as a CUDA graph with static input buffers,
  then replayed (inputs copied in, output copied out). CUDA only.
- ``compile``: the velocity model compiled with ``torch.compile`` (fused kernels), eager loop.
- ``graph+compile``: the compiled model's kernels inside a CUDA graph. CUDA only.
- ``auto``: ``graph`` on CUDA, ``none`` elsewhere.

Rules that keep a replay equal to the eager solve:

- The first velocity call of every solve runs eagerly, with the condition checks (which wait
  for the device); the graph holds the remaining calls, with the checks off.
- A solve is captured the second time the same (velocity object, parameter storage, shapes,
  dtypes, grid, precision) is seen, so a velocity made for one call is never captured.
- A velocity that cannot be captured (it waits for the device, e.g. ``.item()`` in its forward):
  under ``auto`` a warning, and that solve runs eagerly from then on; under ``graph`` a ValueError.
- Only solves without autograd (under ``torch.no_grad`` or ``torch.inference_mode``) are captured
  or compiled; with autograd on, the eager stepper runs, so gradients flow as before.
- A captured velocity must depend only on ``(x, t, c)``, its parameters and buffers (read at
  replay time, so in-place updates are seen) and tensors it holds; Python state changed after
  capture (e.g. a guidance scale) is not seen: use ``capture="none"`` for such models.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from flowevo.flow.condition import Condition

Capture = Literal["auto", "none", "graph", "compile", "graph+compile"]
CAPTURES: tuple[str, ...] = ("auto", "none", "graph", "compile", "graph+compile")

RestFn = Callable[[Tensor, Tensor, Condition | None], Tensor]
"""``rest(x, k0, c)``: the solve after its first velocity call (``k0`` = that call's output)."""


def check_capture(capture: str) -> None:
    """Raise ValueError unless ``capture`` is one of :data:`CAPTURES`."""
    if capture not in CAPTURES:
        raise ValueError(f"unknown capture {capture!r}; use one of {list(CAPTURES)}")


def resolve_capture(capture: Capture, device: torch.device) -> str:
    """The mode a solve on ``device`` runs with now: ``auto`` resolved; ``none`` while autograd records.

    Raises:
        ValueError: a CUDA graph asked for on a device that is not CUDA.
    """
    check_capture(capture)
    if capture == "auto":
        capture = "graph" if device.type == "cuda" else "none"
    if "graph" in capture and device.type != "cuda":
        raise ValueError(
            f"capture={capture!r} needs a CUDA device, the state is on {device}; "
            "use capture='auto', 'compile' or 'none'"
        )
    return "none" if torch.is_grad_enabled() else capture


def storage_key(velocity: Any) -> tuple:
    """Where a module's parameters and buffers live (a new storage means a new capture)."""
    if not isinstance(velocity, nn.Module):
        return ()
    return tuple(t.data_ptr() for t in velocity.parameters()) + tuple(t.data_ptr() for t in velocity.buffers())


def _layout(c: Condition | None) -> tuple | None:
    if c is None:
        return None
    return tuple(None if t is None else (tuple(t.shape), t.dtype) for t in (c.labels, c.values, c.null))


def _parts(c: Condition | None) -> tuple[Tensor | None, ...]:
    return () if c is None else (c.labels, c.values, c.null)


@dataclass
class _Graph:
    velocity: Any  # held, so its id stays unique while the graph lives
    graph: Any  # torch.cuda.CUDAGraph
    x: Tensor
    k0: Tensor
    c: Condition | None
    out: Tensor

    def replay(self, x: Tensor, k0: Tensor, c: Condition | None) -> Tensor:
        self.x.copy_(x)
        self.k0.copy_(k0)
        for static, new in zip(_parts(self.c), _parts(c), strict=True):
            if static is not None:
                static.copy_(new)
        self.graph.replay()
        return self.out.clone()


def capture_graph(velocity: Any, rest: RestFn, x: Tensor, k0: Tensor, c: Condition | None) -> _Graph:
    """Record ``rest`` on static copies of ``(x, k0, c)`` as a CUDA graph (after one warm-up run)."""
    static_x, static_k0 = x.clone(), k0.clone()
    static_c = None if c is None else c._map(torch.clone)
    stream = torch.cuda.Stream(device=x.device)
    stream.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(stream):  # lazy initialisation (cuBLAS workspaces, compilation) stays out of the graph
        rest(static_x, static_k0, static_c)
    torch.cuda.current_stream(x.device).wait_stream(stream)
    graph, caller = torch.cuda.CUDAGraph(), torch.cuda.current_stream(x.device)
    try:
        with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            out = rest(static_x, static_k0, static_c)
    except Exception:
        torch.cuda.set_stream(caller)  # a failed capture can leave the capture stream current
        raise
    return _Graph(velocity, graph, static_x, static_k0, static_c, out)


class CaptureCache:
    """A solver's captured graphs and compiled models (least recently used out beyond ``size``).

    Args:
        size: most graphs kept (each holds its static buffers and a private memory pool).
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self._seen: OrderedDict[tuple, None] = OrderedDict()
        self._compiled: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self._failed: set[tuple] = set()
        self.captures = 0  # graphs captured so far
        self.compiles = 0  # models wrapped by torch.compile so far

    @staticmethod
    def key(velocity: Any, x: Tensor, c: Condition | None, *grid: Any) -> tuple:
        """Everything a graph depends on besides the input values (inference mode too: its static
        buffers are inference tensors or not)."""
        return (
            id(velocity),
            storage_key(velocity),
            tuple(x.shape),
            x.dtype,
            x.device,
            _layout(c),
            torch.is_inference_mode_enabled(),
            *grid,
        )

    def failed(self, key: tuple) -> bool:
        """True if capturing ``key`` failed before (it then runs eagerly)."""
        return key in self._failed

    def add_failure(self, key: tuple) -> None:
        self._failed.add(key)

    def seen_before(self, key: tuple) -> bool:
        """True if ``key`` was asked for before (records it either way)."""
        seen = key in self._seen
        self._seen[key] = None
        self._seen.move_to_end(key)
        while len(self._seen) > 64:
            self._seen.popitem(last=False)
        return seen

    def graph(self, key: tuple) -> _Graph | None:
        """The graph captured for ``key``, if any."""
        g = self._graphs.get(key)
        if g is not None:
            self._graphs.move_to_end(key)
        return g

    def add_graph(self, key: tuple, g: _Graph) -> None:
        self._graphs[key] = g
        self.captures += 1
        while len(self._graphs) > self.size:
            self._graphs.popitem(last=False)

    def compiled(self, velocity: Any) -> Any:
        """``torch.compile(velocity)``, made once per velocity object (held while cached)."""
        hit = self._compiled.get(id(velocity))
        if hit is None or hit[0] is not velocity:
            hit = (velocity, torch.compile(velocity))
            self._compiled[id(velocity)] = hit
            self.compiles += 1
            while len(self._compiled) > self.size:
                self._compiled.popitem(last=False)
        return hit[1]

    def clear(self) -> None:
        """Drop every graph and compiled model (frees their memory once nothing else holds it)."""
        self._graphs.clear()
        self._seen.clear()
        self._compiled.clear()
        self._failed.clear()
