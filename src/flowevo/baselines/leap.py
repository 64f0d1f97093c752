"""LeapFactual-style lift / land: repeated partial inversion under the current label and
re-decoding under the target label.

Each round lifts the current point back to ``t = 1 - gamma`` under the label a black box
currently reads off it, then lands it at ``t = 1`` under the target label. With
``gamma < 1`` it stops moving once the label reads as the target (lift and land then use
the same condition and cancel). One black-box label query per round and row.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from flowevo.baselines.budgeted import final_edits
from flowevo.evolve.result import EditResult
from flowevo.flow.codec import ResidualCodec
from flowevo.flow.condition import Condition


def leap(codec: ResidualCodec, x: Tensor, source_labels: Tensor, target_labels: Tensor,
         label_fn: Callable[[Tensor], Tensor], gamma: float = 0.5, rounds: int = 15,
         condition: Callable[[Tensor], Condition] = Condition.from_labels) -> EditResult:
    """Run ``rounds`` lift/land rounds on ``x (B, *D)`` toward ``target_labels (B,)``.

    Args:
        codec: its model and discretisation are used; strength is set to ``gamma``.
        source_labels: ``(B,)`` the label of each source (used for the first lift).
        label_fn: black box ``x (N, *D) -> (N,)`` hard labels.
        gamma: lift depth in ``(0, 1]`` (1 lifts to pure noise).
        condition: builds the model's condition from labels (default: class ids); e.g. a
            property scaler for a flow conditioned on a continuous value, whose labels (the black
            box's readings) then never equal the target exactly, so every round runs.

    Returns:
        an :class:`~flowevo.evolve.EditResult` (``"leap"``): per row the final edit (residual: its
        flow-space point), label queries per row as evaluations, ``info["labels"] (B,)`` the last labels read.
    """
    start = time.perf_counter()
    partial = codec.with_strength(gamma)
    target = condition(target_labels.to(x.device))
    with torch.inference_mode():
        z = partial.to_flow_space(x)
        current = source_labels.to(x.device)
        queries = torch.zeros(len(x), dtype=torch.long)
        out = x
        for _ in range(rounds):
            active = (current != target_labels.to(x.device)) | (gamma >= 1.0)
            if not active.any():
                break
            idx = torch.nonzero(active).flatten()
            r = partial.invert_latent(z[idx], condition(current[idx]))
            z = z.clone()
            z[idx] = partial.decode_latent(r, target[idx])
            out = partial.from_flow_space(z)
            current = current.clone()
            current[idx] = label_fn(out[idx]).to(current)
            queries[idx.cpu()] += 1
            if gamma >= 1.0:
                break  # a full lift forgets the input: further rounds only resample
    return final_edits("leap", z, out, queries, time.perf_counter() - start, {"labels": current})
