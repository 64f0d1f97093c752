"""Site-masked residual editing: a genome is a residual plus the set of sites it may change.

Random moves in the 22-D residual space of :class:`~.model.CrystalModel` change several sites at
once (decoding the source's residual under a low ``heat_ref`` changes B in three sources out of
four), so edits under a small site budget are rare. Here the genome also names which sites are
**free**; decoding is flow *inpainting*: the kept sites' species codes are pinned to the anchor
(the source) and only the free sites follow the property-conditioned flow.

Genome layout, ``(N, G)`` with ``G = 2 L + 5`` (``L``: flow-space width)::

    [ residual r (L) | free-site mask m (5; 1 = free, order A, B, X_a, X_b, X_c) | anchor z (L) ]

Decoding integrates ``dz/dt = (I - P_m) v(z, t, c) + P_m (anchor - r)`` from ``z = r`` at
``t = 0`` to ``t = 1``, where ``P_m`` projects flow space onto the directions that set the kept
sites' species codes (through the whitening). The kept part then moves on the straight path from
``r`` to the anchor and lands on it exactly, so kept sites decode to the anchor's elements; the
free part follows the learned velocity (replacement-style conditional sampling). An all-free mask
is the plain :class:`~flowevo.flow.ResidualCodec` decode.

:class:`SiteMaskedCodec` implements the :class:`~flowevo.flow.Codec` protocol and
:class:`SiteVariation` the :class:`~flowevo.evolve.operators.VariationStrategy` protocol, so the
Evolver, its survival and its budget constraints run unchanged on genomes. A variation's
*move* makes children: :class:`SiteMutation` (REO: residual self-pollination, mask flips, fresh
residual draws) or :class:`RandomRegions` (the ``masked_random`` ablation: fresh residuals with
random edit regions); the variation never proposes a composition already proposed for that row
(its archive is checkpointed with the run). The edit budget stays a black-box constraint:
nothing here reads it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from flowevo.evolve.operators import SelfPollination, ShellRepair
from flowevo.evolve.population import SELF, Population
from flowevo.flow import Condition, FixedGrid
from flowevo.flow.solver import Discretisation

from .model import CrystalModel

__all__ = ["N_SITES", "GenomeLayout", "RandomRegions", "SiteMaskedCodec", "SiteMove", "SiteMutation", "SiteVariation",
           "composition_keys", "seed_genomes", "seed_masks"]

N_SITES = 5
Key = tuple[str, str, tuple[str, ...]]  # (A, B, sorted anions)


@dataclass(frozen=True)
class GenomeLayout:
    """Slices of a genome row for flow-space width ``dim`` (L)."""

    dim: int

    @property
    def size(self) -> int:
        """Genome width ``G = 2 L + 5``."""
        return 2 * self.dim + N_SITES

    def residual(self, g: Tensor) -> Tensor:
        """``(N, G) -> (N, L)``."""
        return g[:, : self.dim]

    def mask(self, g: Tensor) -> Tensor:
        """``(N, G) -> (N, 5)`` bool, True = free."""
        return g[:, self.dim : self.dim + N_SITES] > 0.5

    def anchor(self, g: Tensor) -> Tensor:
        """``(N, G) -> (N, L)``."""
        return g[:, self.dim + N_SITES :]

    def pack(self, residual: Tensor, mask: Tensor, anchor: Tensor) -> Tensor:
        """``(N, L), (N, 5) bool, (N, L) -> (N, G)``."""
        return torch.cat([residual, mask.to(residual.dtype), anchor.to(residual.dtype)], dim=1)

    def with_residual(self, g: Tensor, residual: Tensor) -> Tensor:
        """A copy of ``g (N, G)`` with its residual part replaced by ``residual (N, L)``."""
        out = g.clone()
        out[:, : self.dim] = residual
        return out

    def with_mask(self, g: Tensor, mask: Tensor) -> Tensor:
        """A copy of ``g (N, G)`` with its mask replaced by ``mask (N, 5)`` bool."""
        out = g.clone()
        out[:, self.dim : self.dim + N_SITES] = mask.to(g.dtype)
        return out


def _mask_index(mask: Tensor) -> Tensor:
    """``(N, 5)`` bool -> ``(N,)`` long in 0..31 (bit s set = site s free)."""
    return (mask.long() * (2 ** torch.arange(N_SITES, device=mask.device))).sum(dim=1)


class _ProjectedVelocity(nn.Module):
    """``v'(z, t, c) = (I - P) v(z, t, c) + drift`` with per-row ``P (N, L, L)`` and ``drift (N, L)``."""

    def __init__(self, velocity: nn.Module, projector: Tensor, drift: Tensor) -> None:
        super().__init__()
        self.velocity, self.projector, self.drift = velocity, projector, drift

    def forward(self, z: Tensor, t: Tensor, c: Condition) -> Tensor:
        v = self.velocity(z, t, c)
        return v - torch.einsum("nij,nj->ni", self.projector, v) + self.drift


class SiteMaskedCodec:
    """Genomes ``(N, G)`` <-> crystal tensors ``(N, D)`` by flow inpainting (see the module doc); a
    :class:`~flowevo.flow.Codec`.

    Args:
        model: a trained :class:`CrystalModel` with a whitening encoder.
        discretisation: the solver grid (the only place the step count is set).

    ``invert(x, c)`` gives the genome ``[invert(x) under c | all free | encode(x)]``, so the
    Evolver's own generation-0 seed is the plain counterfactual of the source.
    """

    def __init__(self, model: CrystalModel, discretisation: Discretisation = FixedGrid("rk4", 10)) -> None:
        if model.encoder is None:
            raise ValueError("SiteMaskedCodec needs a CrystalModel trained with whiten=True")
        self.crystal_model = model
        self.plain = model.codec(discretisation)  # the all-free codec: same velocity, solver and whitening
        self.layout = GenomeLayout(model.residual_dim)
        rep, encoder = model.representation, model.encoder
        comps, scale = encoder.components.double(), encoder.scale.double()
        table = torch.zeros(2**N_SITES, self.layout.dim, self.layout.dim, dtype=torch.float64)
        for free in itertools.product([False, True], repeat=N_SITES):
            kept = [s for s in range(N_SITES) if not free[s]]
            if not kept:
                continue
            cols = [c for s in kept for c in range(rep.species_slice(s).start, rep.species_slice(s).stop)]
            a = comps[:, cols].T * scale[None, :]  # species codes of kept sites = a @ z + const
            table[int(_mask_index(torch.tensor([free]))[0])] = torch.linalg.pinv(a) @ a
        self.projectors = table.float()  # (32, L, L): projector onto the kept sites' directions

    @property
    def device(self) -> torch.device:
        """The velocity model's device."""
        return self.plain.device

    @property
    def nfe(self) -> int:
        """Batched velocity calls so far."""
        return self.plain.nfe

    def residual_shape(self, x: Tensor) -> tuple[int, ...]:
        """``(G,)``: the genome width, whatever the samples."""
        return (self.layout.size,)

    def identity(self) -> str:
        """Hash of the velocity model's weights."""
        return self.plain.identity()

    def invert(self, x: Tensor, c: Condition) -> Tensor:
        """Data ``(N, D)`` under its own condition -> genomes ``(N, G)`` (all sites free, anchored at ``x``)."""
        z = self.plain.to_flow_space(x)
        r = self.plain.invert_latent(z, c)
        return self.layout.pack(r, torch.ones(len(x), N_SITES, dtype=torch.bool, device=x.device), z)

    def decode_latent(self, genomes: Tensor, c: Condition) -> Tensor:
        """Genomes ``(N, G)`` -> flow-space points ``(N, L)`` under condition ``c`` (batch N)."""
        lay = self.layout
        r, anchor = lay.residual(genomes).float(), lay.anchor(genomes).float()
        proj = self.projectors.to(r.device)[_mask_index(lay.mask(genomes))]
        drift = torch.einsum("nij,nj->ni", proj, anchor - r)
        velocity = _ProjectedVelocity(self.plain.model, proj, drift)
        return self.plain.solver.integrate(velocity, r, c, 0.0, 1.0)

    def decode(self, genomes: Tensor, c: Condition) -> Tensor:
        """Genomes ``(N, G)`` under condition ``c`` -> crystal tensors ``(N, D)``."""
        return self.plain.from_flow_space(self.decode_latent(genomes, c))


def composition_keys(model: CrystalModel, x: Tensor) -> list[Key]:
    """Crystal tensors ``(N, D)`` -> ``(A, B, sorted anions)`` per row, without building Structures."""
    rep = model.representation
    raw = x.detach().cpu().double().numpy() * rep.std + rep.mean
    codes = np.stack([raw[:, rep.species_slice(s)] for s in range(N_SITES)], axis=1)
    return [(s[0], s[1], tuple(sorted(s[2:]))) for s in rep.species.decode(codes)]


def seed_masks() -> list[tuple[bool, ...]]:
    """Generation-0 edit regions, smallest first: each single site, then A with each anion, then pairs
    of anions, then A with B. ``(free A, free B, free X_a, free X_b, free X_c)``."""
    one = [tuple(i == s for i in range(N_SITES)) for s in range(N_SITES)]
    a_x = [tuple(i in (0, s) for i in range(N_SITES)) for s in (2, 3, 4)]
    x_x = [tuple(i in p for i in range(N_SITES)) for p in ((2, 3), (2, 4), (3, 4))]
    return one + a_x + x_x + [(True, True, False, False, False)]


class SiteMove(Protocol):
    """How a :class:`SiteVariation` turns parents into children.

    ``move(parents (n, G), layout, generator, step (n,) | None, boldness) -> (n, G)``; ``step`` is the
    Evolver's per-row step scale of each child's row, ``boldness`` in [0, 1] grows on retries of children
    that repeated a composition.
    """

    def __call__(self, parents: Tensor, layout: GenomeLayout, generator: torch.Generator, step: Tensor | None,
                 boldness: float) -> Tensor: ...


@dataclass(frozen=True)
class SiteMutation:
    """REO's move: with probability ``mask_rate`` flip one random site of the mask (free <-> kept; never an
    empty mask); with probability ``fresh_rate`` redraw the residual from N(0, I), otherwise self-pollinate it
    (``angle`` scaled by the step); then shell repair. ``boldness`` raises both rates toward 1."""

    angle: float = 0.5
    mask_rate: float = 0.3
    fresh_rate: float = 0.2
    repair: ShellRepair | None = ShellRepair()

    def __post_init__(self) -> None:
        for name, p in (("mask_rate", self.mask_rate), ("fresh_rate", self.fresh_rate)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {p}")

    def __call__(self, parents: Tensor, layout: GenomeLayout, generator: torch.Generator, step: Tensor | None,
                 boldness: float = 0.0) -> Tensor:
        """Children of ``parents (n, G)``."""
        n, dev = len(parents), parents.device
        mask_rate = self.mask_rate + (1.0 - self.mask_rate) * boldness
        fresh_rate = self.fresh_rate + (1.0 - self.fresh_rate) * boldness
        g = parents.clone()
        flip = torch.rand(n, generator=generator, device=dev) < mask_rate
        if flip.any():
            idx = torch.nonzero(flip).flatten()
            site = torch.randint(0, N_SITES, (len(idx),), generator=generator, device=dev)
            mask = layout.mask(g).clone()
            mask[idx, site] = ~mask[idx, site]
            empty = ~mask.any(dim=1)
            mask[empty] = layout.mask(g)[empty]  # never an empty edit region
            g = layout.with_mask(g, mask)
        fresh = torch.rand(n, generator=generator, device=dev) < fresh_rate
        r = layout.residual(g).clone()
        if fresh.any():
            r[fresh] = torch.randn(int(fresh.sum()), layout.dim, generator=generator, device=dev, dtype=r.dtype)
        local = ~fresh
        if local.any():
            r[local] = SelfPollination(self.angle)(r[local], generator, None if step is None else step[local])
        if self.repair is not None:
            r = self.repair(r)
        return layout.with_residual(g, r)


@dataclass(frozen=True)
class RandomRegions:
    """The ``masked_random`` ablation's move: every child is a fresh N(0, I) residual with an edit region
    drawn uniformly from ``masks`` (default :func:`seed_masks`): no inheritance from the parent."""

    masks: tuple[tuple[bool, ...], ...] = field(default_factory=lambda: tuple(seed_masks()))

    def __call__(self, parents: Tensor, layout: GenomeLayout, generator: torch.Generator, step: Tensor | None,
                 boldness: float = 0.0) -> Tensor:
        """Children of ``parents (n, G)`` (only their anchors are kept)."""
        masks = torch.tensor(self.masks, dtype=torch.bool, device=parents.device)
        pick = torch.randint(0, len(masks), (len(parents),), generator=generator, device=parents.device)
        g = layout.with_mask(parents, masks[pick])
        r = torch.randn(len(parents), layout.dim, generator=generator, device=parents.device)
        return layout.with_residual(g, r)


class SiteVariation:
    """Offspring of site-masked genomes, row by row, never repeating a composition of the row
    (a :class:`~flowevo.evolve.operators.VariationStrategy`).

    Each child takes a parent of its row by binary tournament and is made by ``move``. Children are
    decoded under their row's target; those whose composition the row has already proposed (or a
    sibling has, or the unedited source) are made again from the same parent, more boldly each time,
    up to ``retries`` times (the last attempt is kept either way). The archive of proposed
    compositions is part of :meth:`state_dict`, so a resumed run continues exactly.

    Args:
        codec: the :class:`SiteMaskedCodec` the Evolver decodes with.
        target: the task's target conditions (batch B, one per row).
        move: :class:`SiteMutation` (default) or :class:`RandomRegions`.
        retries: extra rounds for children that repeat a composition.
        seed_angle, seed_repair: generation-0 variants self-pollinate each row's genome residual by this
            angle, then shell repair.
        archive: ``"proposed"`` (default): a composition enters the row's archive when a child is proposed;
            ``"scored"``: only when the black box scores it (every batch :meth:`observe` sees), children
            are kept distinct from each other and from the archive. Use ``"scored"`` under pre-screening
            (:class:`~flowevo.evolve.operators.PreScreen`), where most proposed children are never sent: a
            screened-out composition may then be proposed again later.
    """

    def __init__(self, codec: SiteMaskedCodec, target: Condition, move: SiteMove = SiteMutation(), retries: int = 4,
                 seed_angle: float = 0.5, seed_repair: ShellRepair | None = ShellRepair(),
                 archive: str = "proposed") -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if archive not in ("proposed", "scored"):
            raise ValueError(f"archive must be 'proposed' or 'scored', got {archive!r}")
        self.codec, self.target, self.layout, self.move, self.retries = codec, target, codec.layout, move, retries
        self.archive = archive
        self.seed_pollination, self.seed_repair = SelfPollination(seed_angle), seed_repair
        self.seen: dict[int, set[Key]] = {}

    # -- archive ------------------------------------------------------------------------------
    def _decode(self, genomes: Tensor, rows: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.codec.decode(genomes, self.target.to(genomes.device)[rows])

    def _keys(self, genomes: Tensor, rows: Tensor) -> list[Key]:
        return composition_keys(self.codec.crystal_model, self._decode(genomes, rows))

    def _add(self, rows: Sequence[int], keys: Sequence[Key]) -> None:
        for r, k in zip(rows, keys):
            self.seen.setdefault(int(r), set()).add(k)

    def observe(self, evaluated: Population) -> None:
        """The first scored batch (generation 0) enters the archive with each row's unedited source; later
        children were archived when they were proposed (``archive="scored"``: every scored batch enters it)."""
        if evaluated.decoded is None:
            return
        if self.seen:
            if self.archive == "scored":
                self._add(evaluated.row.tolist(), composition_keys(self.codec.crystal_model, evaluated.decoded))
            return
        sources = self.codec.plain.from_flow_space(self.layout.anchor(evaluated.residuals))
        self._add(evaluated.row.tolist(), composition_keys(self.codec.crystal_model, evaluated.decoded))
        self._add(evaluated.row.tolist(), composition_keys(self.codec.crystal_model, sources))

    def state_dict(self) -> dict[str, Any]:
        """The archive: ``{"seen": {row: [[A, B, X_1, X_2, X_3], ...]}}`` (sorted, plain strings)."""
        return {"seen": {str(r): sorted([k[0], k[1], *k[2]] for k in keys) for r, keys in self.seen.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the archive of :meth:`state_dict`."""
        self.seen = {int(r): {(k[0], k[1], tuple(k[2:])) for k in keys} for r, keys in state.get("seen", {}).items()}

    # -- variation ----------------------------------------------------------------------------
    def initial(self, residuals: Tensor, count: int, generator: torch.Generator) -> Tensor:
        """Generation-0 variants ``(B, G) -> (B, count, G)``: the genome residual self-pollinated, then repaired."""
        lay, b = self.layout, residuals.shape[0]
        g = residuals.repeat_interleave(count, dim=0)
        r = self.seed_pollination(lay.residual(g), generator)
        if self.seed_repair is not None:
            r = self.seed_repair(r)
        return lay.with_residual(g, r).reshape(b, count, -1)

    def offspring(self, population: Population, rows: int, per_row: int, generator: torch.Generator,
                  step: Tensor | None = None) -> Population:
        """Children ``(rows * per_row)`` from ``rows`` equal blocks, each sorted best first."""
        n = len(population)
        if n % rows:
            raise ValueError(f"population of {n} is not {rows} equal row blocks")
        k = n // rows
        dev = population.residuals.device
        row = torch.arange(rows, device=dev).repeat_interleave(per_row)
        a = torch.randint(0, k, (rows * per_row,), generator=generator, device=dev)
        b = torch.randint(0, k, (rows * per_row,), generator=generator, device=dev)
        parents = population.residuals[row * k + torch.minimum(a, b)]
        scale = None if step is None else step.to(dev)[row]
        children = self.move(parents, self.layout, generator, scale, 0.0)
        todo = torch.arange(len(children), device=dev)
        # "scored": siblings are kept distinct in a batch-local copy; the archive grows in observe()
        local = self.seen if self.archive == "proposed" else {}
        decoded = None
        for attempt in range(self.retries + 1):
            x = self._decode(children[todo], row[todo])
            if self.archive == "scored":  # handed over decoded (a screening wrapper need not decode them again)
                decoded = x.clone() if decoded is None else decoded.index_copy_(0, todo, x)
            keys = composition_keys(self.codec.crystal_model, x)
            again = []
            for j, key in zip(todo.tolist(), keys):
                r = int(row[j])
                seen = local.setdefault(r, set(self.seen.get(r, ())) if local is not self.seen else set())
                if key in seen and attempt < self.retries:
                    again.append(j)
                else:
                    seen.add(key)
            if not again:
                break
            todo = torch.tensor(again, dtype=torch.long, device=dev)
            boldness = (attempt + 1) / (self.retries + 1)
            children[todo] = self.move(parents[todo], self.layout, generator,
                                       None if scale is None else scale[todo], boldness)
        origin = torch.full((rows * per_row,), SELF, dtype=torch.long, device=dev)
        kids = Population.new(children, row, origin, torch.full_like(origin, -1), population.values.shape[1],
                              population.generation + 1)
        return kids if decoded is None else dataclasses.replace(kids, decoded=decoded)


def seed_genomes(codec: SiteMaskedCodec, sources: Tensor, source_condition: Condition,
                 masks: Sequence[Sequence[bool]]) -> Tensor:
    """Extra seeds ``(B, len(masks), G)``: each source's own residual with each edit region."""
    with torch.inference_mode():
        g = codec.invert(sources, source_condition)
    lay = codec.layout
    out = [lay.with_mask(g, torch.tensor([list(m)] * len(g), dtype=torch.bool, device=g.device)) for m in masks]
    return torch.stack(out, dim=1)
