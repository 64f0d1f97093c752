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

:func:`save_crystal_models` writes them as a MODEL_DIR (what ``flowevo train --data FILE.csv`` writes and
``flowevo optimize --model DIR`` reads); :func:`load_crystal_models` reads it back:

==============================  ==========================================================================
file                            what
==============================  ==========================================================================
``crystal_flow.pt``             the CFM (:func:`~.model.save_crystal_model`)
``surrogate.json``              the surrogate (MLP), the only predictor a search optimises against
``judge.json``                  the independent judge (gradient boosting), evaluation only
``chgnet_references.json``      per-element CHGNet reference energies (:class:`~.energy.ReferenceEnergies`)
``training.json``               property, percentiles and thresholds (SR5/10/15), the default target
                                (the lowest training value), rows, seed and wall time
==============================  ==========================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import CrystalTable
from .energy import CHGNetEnergy, FormationEnergy, ReferenceEnergies
from .model import CHECKPOINT_NAME, CrystalModel, load_crystal_model, save_crystal_model, train_crystal_flow
from .objectives import canonical_sources, structures_payload
from .predictors import PropertyPredictor, fit_independent, fit_surrogate, load_predictor

__all__ = ["JUDGE_FILE", "PERCENTILES", "REFERENCES_FILE", "SURROGATE_FILE", "TRAINING_FILE", "CrystalModels",
           "fit_crystal_models", "load_crystal_models", "save_crystal_models"]

from .files import JUDGE_FILE, REFERENCES_FILE, SURROGATE_FILE, TRAINING_FILE  # noqa: E402

#: CDVAE's success thresholds: an edit succeeds when the judged property is below this percentile of training.
PERCENTILES: dict[str, float] = {"sr5": 5, "sr10": 10, "sr15": 15}


@dataclass
class CrystalModels:
    """The fitted models of one crystal editing run (see the module doc).

    Attributes:
        model: the property-conditioned CFM (its ``representation`` decodes tensors to Structures).
        surrogate: the MLP predictor searches optimise against (None only in a MODEL_DIR saved without one).
        independent: the gradient-boosting judge, or None when not fitted.
        formation: CHGNet formation energy ``structures -> (N,)`` eV/atom, or None when not fitted.
        chgnet_rows: training rows the CHGNet references were fitted on (0: no formation judge).
        thresholds: name -> percentile of the training property (e.g. ``{"sr5": ..., ...}``).
        setup_s: seconds spent fitting.
        percentiles: name -> the percentile each threshold is.
        lowest: the lowest training value of the property (REO's decoding target).
        info: what :func:`save_crystal_models` recorded with them (rows, seed, settings), if loaded.
    """

    model: CrystalModel
    surrogate: PropertyPredictor | None
    independent: PropertyPredictor | None = None
    formation: FormationEnergy | None = None
    chgnet_rows: int = 0
    thresholds: dict[str, float] = field(default_factory=dict)
    setup_s: float = 0.0
    percentiles: dict[str, float] = field(default_factory=dict)
    lowest: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

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
    show_progress: bool = False,
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
        log: progress messages (each part's wall time included).
        show_progress: progress bars for the CFM and the surrogate.

    Raises:
        KeyError: a named column is not in ``train.properties``.
    """
    target = surrogate_property or property
    for col in {property, target} | ({reference_property} if chgnet_rows > 0 else set()):
        if col not in train.properties:
            raise KeyError(f"property {col!r} not in the training table (has {sorted(train.properties)})")
    t0 = time.perf_counter()
    log(f"training CFM ({cfm_steps} steps) on {len(train)} crystals")
    model = train_crystal_flow(train, property, seed=seed, steps=cfm_steps,
                               **{"show_progress": show_progress, **dict(flow_options or {})})
    t1 = time.perf_counter()
    log(f"CFM trained in {t1 - t0:.0f} s; fitting the surrogate (MLP, {surrogate_steps} steps)")
    surrogate = fit_surrogate(train, target, seed=seed, steps=surrogate_steps, show_progress=show_progress)
    independent = None
    if gbr_estimators:
        log(f"surrogate fitted in {time.perf_counter() - t1:.0f} s; fitting the independent judge "
            f"(gradient boosting, {gbr_estimators} trees)")
        t2 = time.perf_counter()
        independent = fit_independent(train, target, seed=seed + 1, n_estimators=gbr_estimators)
        log(f"independent judge fitted in {time.perf_counter() - t2:.0f} s")
    formation, used = None, 0
    if chgnet_rows > 0:
        rows = np.random.default_rng(seed).permutation(len(train))[:chgnet_rows]
        log(f"fitting CHGNet reference energies on {len(rows)} training crystals")
        t3 = time.perf_counter()
        fit = canonical_sources(train.subset(rows), model.representation)
        formation = FormationEnergy.fit(fit, train.properties[reference_property][rows], CHGNetEnergy())
        used = len(rows)
        log(f"CHGNet references fitted in {time.perf_counter() - t3:.0f} s")
    y = train.properties[property]
    pct = PERCENTILES if percentiles is None else percentiles
    thresholds = {k: float(np.percentile(y, p)) for k, p in pct.items()}
    return CrystalModels(model, surrogate, independent, formation, used, thresholds, time.perf_counter() - t0,
                         dict(pct), float(np.min(y)))


def save_crystal_models(models: CrystalModels, directory: str | Path, info: Mapping[str, Any] | None = None) -> Path:
    """Write ``models`` as a MODEL_DIR (the files in the module doc); ``info`` (JSON-able) is recorded in
    ``training.json``. Returns the directory."""
    from flowevo.jsonio import write_json

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_crystal_model(models.model, out)
    for name, predictor in ((SURROGATE_FILE, models.surrogate), (JUDGE_FILE, models.independent)):
        if predictor is not None:
            predictor.save(out / name)
        else:
            (out / name).unlink(missing_ok=True)
    if models.formation is not None:
        models.formation.references.save(out / REFERENCES_FILE)
    else:
        (out / REFERENCES_FILE).unlink(missing_ok=True)
    write_json(out / TRAINING_FILE, {
        "property": models.model.property, "thresholds": models.thresholds, "percentiles": models.percentiles,
        "lowest": models.lowest, "chgnet_rows": models.chgnet_rows, "setup_s": models.setup_s, **dict(info or {})})
    return out


def load_crystal_models(directory: str | Path) -> CrystalModels:
    """Read a MODEL_DIR written by :func:`save_crystal_models` (or by an older ``flowevo train``: then only the
    parts it holds: no judge, no thresholds, ``lowest`` None).

    Raises:
        FileNotFoundError: no ``crystal_flow.pt`` in ``directory``.
    """
    from flowevo.jsonio import read_json

    d = Path(directory)
    if not (d / CHECKPOINT_NAME).is_file():
        raise FileNotFoundError(f"{d}: no {CHECKPOINT_NAME}; not a crystal MODEL_DIR (flowevo train --data FILE.csv)")
    model = load_crystal_model(d)
    load = lambda name: load_predictor(d / name) if (d / name).is_file() else None  # noqa: E731
    refs = d / REFERENCES_FILE
    formation = FormationEnergy(CHGNetEnergy(), ReferenceEnergies.load(refs)) if refs.is_file() else None
    info = dict(read_json(d / TRAINING_FILE)) if (d / TRAINING_FILE).is_file() else {}
    lowest = info.get("lowest")
    return CrystalModels(model, load(SURROGATE_FILE), load(JUDGE_FILE), formation, int(info.get("chgnet_rows", 0)),
                         {k: float(v) for k, v in (info.get("thresholds") or {}).items()},
                         float(info.get("setup_s", 0.0)),
                         {k: float(v) for k, v in (info.get("percentiles") or {}).items()},
                         None if lowest is None else float(lowest), info)
