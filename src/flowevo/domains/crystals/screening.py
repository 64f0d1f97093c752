"""Pre-screening of site-masked crystal edits: the surrogate's input is the decoded composition.

:class:`~flowevo.evolve.operators.PreScreen` decodes ``factor`` times the children the Evolver sends, calls
the cheap constraints exactly (structure validity, SMACT composition validity and the edit budget are
marked ``cheap=True`` in :mod:`~.objectives`, so no evaluation is spent on a child that breaks them) and
ranks the rest by a GP fitted online to what the black box has scored. A crystal property black box scores
the decoded crystal alone, so the GP can be **pooled** over every source edited toward the same target
(hundreds of scored crystals after generation 0), on features of the decoded composition:

* ``"codes"``: the flow's own species codes (:class:`~.species.SpeciesCode`: electronegativity, atomic
  radius, row, group; standardised) of the nearest allowed element at A and at B, and the mean, min and
  max over the three anions (anion order does not matter) -> ``(N, 5 F)``;
* ``"onehot"``: one-hot of the A and B elements over the elements allowed at each site and the count of
  each anion -> ``(N, V_A + V_B + V_X)``.

Both are read from the decoded crystal tensor (the composition the representation decodes), not from the
judges' descriptors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .model import CrystalModel

__all__ = ["FEATURES", "composition_features", "feasible_seeds", "site_prescreen"]

FEATURES = ("codes", "onehot")


def composition_features(model: CrystalModel, kind: str = "codes") -> Callable[[Tensor, Tensor], Tensor]:
    """A :class:`~flowevo.evolve.operators.PreScreen` ``features`` function: ``(genomes (N, G), decoded
    crystal tensors (N, D)) -> (N, d)`` float64 features of each decoded composition (see the module doc).

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind not in FEATURES:
        raise ValueError(f"unknown composition features {kind!r}; use one of {list(FEATURES)}")
    rep = model.representation
    species = rep.species
    allowed = species.allowed or [species.elements] * 5
    index = {e: i for i, e in enumerate(species.elements)}
    table = species._scaled_table()  # (V, F) the codes the flow decodes to
    sites = [{e: i for i, e in enumerate(allowed[s])} for s in range(5)]
    anions = {e: i for i, e in enumerate(sorted(set(allowed[2]) | set(allowed[3]) | set(allowed[4])))}

    def features(genomes: Tensor, decoded: Tensor) -> Tensor:
        raw = decoded.detach().cpu().double().numpy() * rep.std + rep.mean
        codes = np.stack([raw[:, rep.species_slice(s)] for s in range(5)], axis=1)
        symbols = species.decode(codes)
        if kind == "codes":
            c = table[[[index[e] for e in row] for row in symbols]]  # (N, 5, F) snapped codes
            x = c[:, 2:]
            out = np.concatenate([c[:, 0], c[:, 1], x.mean(1), x.min(1), x.max(1)], axis=1)
        else:
            out = np.zeros((len(symbols), len(sites[0]) + len(sites[1]) + len(anions)))
            for n, row in enumerate(symbols):
                out[n, sites[0][row[0]]] = 1.0
                out[n, len(sites[0]) + sites[1][row[1]]] = 1.0
                for e in row[2:]:
                    out[n, len(sites[0]) + len(sites[1]) + anions[e]] += 1.0
        return torch.as_tensor(out, dtype=torch.float64)

    return features


def site_prescreen(variation: Any, model: CrystalModel, factor: int = 8, features: str = "codes", pool: bool = True,
                   pool_capacity: int = 2048, seed: int = 0, **options: Any) -> Any:
    """:class:`~flowevo.evolve.operators.PreScreen` around a :class:`~.site_edit.SiteVariation` (built with
    ``archive="scored"``), ranking ``factor`` times the children sent by a GP on
    :func:`composition_features` (pooled over rows of the same target with ``pool=True``); ``options`` go
    to ``PreScreen``."""
    from flowevo.evolve.operators import PreScreen

    return PreScreen(variation, factor=factor, features=composition_features(model, features), pool=pool,
                     pool_capacity=pool_capacity, seed=seed, **options)


def feasible_seeds(codec: Any, task: Any, constraints: Sequence[Any], payload: Callable[[Tensor], dict],
                   masks: Sequence[Sequence[bool]], count: int, variants: int = 3, angle: float = 0.5,
                   seed: int = 0) -> Tensor:
    """Generation-0 seeds ``(B, count, G)`` that pass the cheap constraints, without a black-box call.

    Candidates per row, in order of preference: the source's own residual with each edit region of ``masks``
    (as :func:`~.site_edit.seed_genomes`), then ``variants`` rounds of the same with the residual
    self-pollinated by ``angle`` (shell-repaired). All are decoded under the row's target and the
    ``cheap=True`` ``constraints`` called exactly; each row takes the first ``count`` whose violation is 0 and
    whose composition is new (neither the source's nor an earlier pick's), then, if too few, the first of the
    rest: feasible before infeasible, new compositions before repeats.

    Args:
        codec: the :class:`~.site_edit.SiteMaskedCodec`.
        task: the :class:`~flowevo.evolve.EditTask` (sources, conditions).
        constraints: the run's constraints; those not ``cheap`` are ignored.
        payload: the run's payload hook (:func:`~.objectives.structures_payload`).
        masks: edit regions, preferred first.
        count: seeds per row.
        variants: self-pollinated rounds after the exact one.
        angle: their self-pollination angle.
        seed: their random seed.
    """
    from flowevo.evolve.operators import SelfPollination, ShellRepair
    from flowevo.objectives import Candidates, evaluate_callable, is_cheap

    from .site_edit import composition_keys, seed_genomes

    if count < 0 or variants < 0:
        raise ValueError(f"count and variants must be >= 0, got {count} and {variants}")
    lay = codec.layout
    base = seed_genomes(codec, task.sources, task.source_condition, masks)  # (B, P, G)
    B, P, G = base.shape
    if count == 0:
        return base[:, :0]
    gen = torch.Generator(device=base.device).manual_seed(seed)
    rounds = [base]
    for _ in range(variants):
        flat = base.reshape(B * P, G)
        r = ShellRepair()(SelfPollination(angle)(lay.residual(flat), gen))
        rounds.append(lay.with_residual(flat, r).reshape(B, P, G))
    pool = torch.cat(rounds, dim=1)  # (B, Q, G)
    Q = pool.shape[1]
    flat = pool.reshape(B * Q, G)
    row = torch.arange(B, device=base.device).repeat_interleave(Q)
    target = task.target_condition.to(base.device)[row]
    with torch.inference_mode():
        x = codec.decode(flat, target)
        src_x = codec.plain.from_flow_space(lay.anchor(base[:, 0]))
    violation = torch.zeros(B * Q, dtype=torch.float64)
    cheap = [c for c in constraints if is_cheap(c)]
    if cheap:
        cands = Candidates(x=x, source_index=row, sources=task.sources.to(base.device)[row], target=target,
                           extra=payload(x))
        for c in cheap:
            g = evaluate_callable(c, c.name, cands, [])
            violation += torch.nan_to_num(c.violation(g), nan=math.inf)
    keys = composition_keys(codec.crystal_model, x)
    src_keys = composition_keys(codec.crystal_model, src_x)
    out = torch.empty(B, count, G, dtype=pool.dtype, device=pool.device)
    for b in range(B):
        taken: list[int] = []
        used = {src_keys[b]}
        for q in range(Q):
            i = b * Q + q
            if violation[i] == 0 and keys[i] not in used:
                taken.append(q)
                used.add(keys[i])
                if len(taken) == count:
                    break
        rest = [q for q in range(Q) if q not in taken]
        # stable: feasible ones (a repeat, e.g. the source's own composition) before infeasible, new before repeats
        rest.sort(key=lambda q: (bool(violation[b * Q + q] > 0), keys[b * Q + q] in used))
        pick = (taken + rest)[:count]
        out[b] = pool[b, pick]
    return out
