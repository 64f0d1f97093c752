"""A third-party domain, written as a plugin author would (only the public ``flowevo.domains`` API).

Data: a text file ``*.rings`` of 2-D points with their ring id (columns x, y, ring; ring 0 has
radius 1, ring 1 radius 3). It registers a built-in (``rings.radius_error``), a trainer, a
MODEL_DIR loader (``rings_flow.pt``), default objectives and an output writer (``edits.csv``).
Used by tests/domains/test_registry.py, at run time and through an entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from flowevo.domains import Builtin, BuiltinContext, Domain, DomainRun, RunRequest, Trained, TrainRequest

RADII = (1.0, 3.0)
CHECKPOINT = "rings_flow.pt"


def make_rings(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 3)``: points (x, y) near their ring's radius and the ring id."""
    rng = np.random.default_rng(seed)
    ring = np.arange(n) % 2
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = np.asarray(RADII)[ring] + rng.normal(0, 0.05, n)
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle), ring])


def _read(path: Path):
    import torch

    table = np.loadtxt(path, ndmin=2)
    return torch.as_tensor(table[:, :2], dtype=torch.float32), torch.as_tensor(table[:, 2], dtype=torch.long)


def radius_error(ctx: BuiltinContext):
    import torch

    radii = torch.tensor(ctx.extra["radii"], dtype=torch.float64)
    return lambda c: (c.x.double().norm(dim=1) - radii[c.target.labels.cpu()]).abs()


def train(request: TrainRequest, show_progress: bool, log: Callable[[str], None]) -> Trained:
    import torch

    from flowevo.flow import Condition, MLPVelocity, TrainConfig, save_checkpoint, train_flow

    x, ring = _read(request.data)
    steps = request.settings.get("steps") or 300
    with torch.random.fork_rng():
        torch.manual_seed(request.seed)
        model = MLPVelocity((2,), num_classes=2, hidden=64, depth=2)
    result = train_flow(model, x, Condition.from_labels(ring), TrainConfig(steps=steps, batch_size=128, seed=request.seed))
    save_checkpoint(Path(request.out) / CHECKPOINT, result.model)
    summary = {"model_dir": str(request.out), "kind": "rings", "steps": steps, "final_loss": result.losses[-1]}
    return Trained(summary, {"steps": steps}, result.losses, steps)


def load_run(request: RunRequest) -> DomainRun:
    from flowevo.flow import Condition, FixedGrid, ResidualCodec, load_checkpoint

    if request.target_class is None:
        raise ValueError("optimize.target: a rings model needs a ring id (class=0 or class=1)")
    model, _ = load_checkpoint(Path(request.model_dir) / CHECKPOINT)
    x, ring = _read(request.sources)
    if request.rows is not None:
        x, ring = x[:request.rows], ring[:request.rows]
    codec = ResidualCodec(model, FixedGrid(request.solver, request.solver_steps), strength=request.strength)
    target = Condition.from_labels([request.target_class] * len(x))
    return DomainRun("rings", "vectors", (2,), x, ring, None, Condition.from_labels(ring), target, codec, model,
                     extra={"radii": list(RADII)})


def write_outputs(run: DomainRun, run_dir: Path, best, violation) -> None:
    rows = np.column_stack([best.numpy(), violation.numpy()])
    np.savetxt(run_dir / "edits.csv", rows, delimiter=",", header="x,y,violation", comments="")


DOMAIN = Domain(
    "rings",
    {"rings.radius_error": Builtin(radius_error, "min", "alignment", "|radius - the target ring's radius|")},
    recognises_model=lambda folder: (folder / CHECKPOINT).is_file(), load_run=load_run, model_hint=CHECKPOINT,
    recognises_data=lambda path: path.suffix == ".rings", train=train, data_hint="a .rings text file",
    write_outputs=write_outputs,
    default_objectives=lambda ctx, has_class, has_values: ["rings.radius_error", "distance_to_source"],
)
