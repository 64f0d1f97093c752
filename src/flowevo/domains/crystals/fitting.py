"""Every model a crystal editing run needs, fitted once on a training table.

:func:`fit_crystal_models` trains, on one :class:`~.data.CrystalTable`:

* the property-conditioned CFM (:func:`~.model.train_crystal_flow`), the model edits are decoded by;
* the **surrogate** (:func:`~.predictors.fit_surrogate`, an MLP): the only predictor a search optimises against;
* optionally the **independent** judge (:func:`~.predictors.fit_independent`, gradient boosting with
  another seed): evaluation only, never optimised against;
* optionally the CHGNet formation-energy judge (:class:`~.energy.FormationEnergy`): CHGNet energy per
  atom minus per-element references fitted on a random subset of the training rows;
* success thresholds: percentiles of the training property (CDVAE's SR5 / SR10 / SR15 by default).

Every part is seeded from ``seed`` (the flow and surrogate by ``seed``, the judge by ``seed + 1``, the
CHGNet rows by ``numpy.random.default_rng(seed)``), so the same call gives the same models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .data import CrystalTable
from .energy import CHGNetEnergy, FormationEnergy
from .model import CrystalModel, train_crystal_flow
from .objectives import canonical_sources, structures_payload
from .predictors import PropertyPredictor, fit_independent, fit_surrogate

__all__ = ["PERCENTILES", "CrystalModels", "fit_crystal_models"]

#: CDVAE's success thresholds: an edit succeeds when the judged property is below this percentile of training.
PERCENTILES: dict[str, float] = {"sr5": 5, "sr10": 10, "sr15": 15}


@dataclass
class CrystalModels:
    """The fitted models of one crystal editing run (see the module doc).

    Attributes:
        model: the property-conditioned CFM (its ``representation`` decodes tensors to Structures).
        surrogate: the MLP predictor searches optimise against.
        independent: the gradient-boosting judge, or None when not fitted.
        formation: CHGNet formation energy ``structures -> (N,)`` eV/atom, or None when not fitted.
        chgnet_rows: training rows the CHGNet references were fitted on (0: no formation judge).
        thresholds: name -> percentile of the training property (e.g. ``{"sr5": ..., ...}``).
        setup_s: seconds spent fitting.
    """

    model: CrystalModel
    surrogate: PropertyPredictor
    independent: PropertyPredictor | None = None
    formation: FormationEnergy | None = None
    chgnet_rows: int = 0
    thresholds: dict[str, float] = field(default_factory=dict)
    setup_s: float = 0.0

    @property
    def representation(self) -> Any:
        """The model's :class:`~.representation.CrystalRepresentation`."""
        return self.model.representation

    def payload(self) -> Callable[[Any], dict[str, list]]:
        """The Evolver / baseline ``payload`` hook: decoded tensors ``(N, D)`` -> ``{"structures": [...]}``."""
        return structures_payload(self.model.representation)


def fit_crystal_models(
    train: CrystalTable,
    property: str = "heat_ref",
    seed: int = 0,
    cfm_steps: int = 3000,
    surrogate_steps: int = 3000,
    surrogate_property: str | None = None,
    gbr_estimators: int | None = 1200,
    chgnet_rows: int = 600,
    reference_property: str = "heat_ref",
    percentiles: Mapping[str, float] | None = None,
    flow_options: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> CrystalModels:
    """Fit the models of a crystal editing run on ``train`` (see the module doc).

    Args:
        train: the training crystals.
        property: the column the CFM is conditioned on (and the thresholds are percentiles of).
        seed: seeds every part.
        cfm_steps, surrogate_steps: training steps of the CFM and of the surrogate MLP.
        surrogate_property: the column the surrogate (and judge) predict; default ``property``.
        gbr_estimators: trees of the independent judge; None fits no judge.
        chgnet_rows: training rows the CHGNet references are fitted on (a random subset); 0 fits no
            formation-energy judge.
        reference_property: the column holding formation energy per atom, the references' target.
        percentiles: name -> percentile of ``train.properties[property]``; default :data:`PERCENTILES`.
        flow_options: extra keyword arguments of :func:`~.model.train_crystal_flow` (e.g. ``batch_size``).
        log: progress messages.

    Raises:
        KeyError: a named column is not in ``train.properties``.
    """
    target = surrogate_property or property
    for col in {property, target} | ({reference_property} if chgnet_rows > 0 else set()):
        if col not in train.properties:
            raise KeyError(f"property {col!r} not in the training table (has {sorted(train.properties)})")
    t0 = time.perf_counter()
    log(f"training CFM ({cfm_steps} steps) on {len(train)} crystals")
    model = train_crystal_flow(train, property, seed=seed, steps=cfm_steps, **dict(flow_options or {}))
    log("fitting surrogate (MLP)" + (" and independent predictor (gradient boosting)" if gbr_estimators else ""))
    surrogate = fit_surrogate(train, target, seed=seed, steps=surrogate_steps)
    independent = fit_independent(train, target, seed=seed + 1, n_estimators=gbr_estimators) if gbr_estimators else None
    formation, used = None, 0
    if chgnet_rows > 0:
        rows = np.random.default_rng(seed).permutation(len(train))[:chgnet_rows]
        log(f"fitting CHGNet reference energies on {len(rows)} training crystals")
        fit = canonical_sources(train.subset(rows), model.representation)
        formation = FormationEnergy.fit(fit, train.properties[reference_property][rows], CHGNetEnergy())
        used = len(rows)
    y = train.properties[property]
    pct = PERCENTILES if percentiles is None else percentiles
    thresholds = {k: float(np.percentile(y, p)) for k, p in pct.items()}
    return CrystalModels(model, surrogate, independent, formation, used, thresholds, time.perf_counter() - t0)
