"""The crystal domain: fixed-size crystals (e.g. Perov-5 perovskites) from CDVAE-format CSVs.

Entry points: :func:`load_cdvae_csv` (data), :func:`train_crystal_flow` / :class:`CrystalModel`
(the property-conditioned flow; :func:`save_crystal_model` / :func:`load_crystal_model`),
:func:`fit_surrogate` and :class:`PropertyPredictor` (property predictors), a judge on other features
(:func:`fit_element_judge`) and :func:`judge_trust` (each judge against labelled truth), :class:`CHGNetEnergy`
and :class:`FormationEnergy`, the site-masked edit (:class:`SiteMaskedCodec`, :class:`SiteVariation`, pre-screened by default:
:func:`site_prescreen`; one call: :func:`site_masked_reo`), the models of an edit run in one call
(:func:`fit_crystal_models`; a MODEL_DIR:
:func:`save_crystal_models` / :func:`load_crystal_models`), the
baselines on crystals (:func:`leap_edit`, :func:`gradient_edit`, :class:`ExhaustiveSearch`), CIF
outputs (:func:`write_edit_outputs`) and cell pictures (:func:`draw_cell`), the validity checks and objectives.
The ``crystals.*`` built-ins, MODEL_DIR loader, trainer and CIF
writer are registered in :mod:`flowevo.domains.crystals.registration`.

Names are imported on first use, so ``import flowevo.domains.crystals`` does not load pymatgen.
"""

from flowevo.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("CrystalTable", "load_cdvae_csv", "split_indices", "write_csv_rows"),
                    "flowevo.domains.crystals.data"),
    **dict.fromkeys(("CrystalModel", "load_crystal_model", "save_crystal_model", "train_crystal_flow"),
                    "flowevo.domains.crystals.model"),
    **dict.fromkeys(("CrystalRepresentation",), "flowevo.domains.crystals.representation"),
    **dict.fromkeys(("SpeciesCode",), "flowevo.domains.crystals.species"),
    **dict.fromkeys(("PropertyPredictor", "fit_independent", "fit_surrogate", "load_predictor"),
                    "flowevo.domains.crystals.predictors"),
    **dict.fromkeys(("CHGNetEnergy", "FormationEnergy", "ReferenceEnergies"), "flowevo.domains.crystals.energy"),
    **dict.fromkeys(("SMACT_SET", "CompositionCheck", "composition_valid", "crystal_valid", "sites_changed",
                     "space_group", "structure_valid"), "flowevo.domains.crystals.validity"),
    **dict.fromkeys(("budget_constraint", "canonical_sources", "composition_validity_constraint",
                     "fingerprint_distance_objective", "formation_energy_objective", "property_objective",
                     "sites_changed_objective", "space_group_objective", "structure_validity_constraint",
                     "structure_projection", "structures_payload"), "flowevo.domains.crystals.objectives"),
    **dict.fromkeys(("energy_ceiling_constraint", "extra_constraints", "smact_strict_constraint"),
                    "flowevo.domains.crystals.constraints"),
    **dict.fromkeys(("GenomeLayout", "RandomRegions", "SiteMaskedCodec", "SiteMutation", "SiteVariation", "seed_masks"),
                    "flowevo.domains.crystals.site_edit"),
    **dict.fromkeys(("best_structures", "edit_evaluator", "encodable_sources", "kept_edits", "site_masked_evolver",
                     "site_masked_reo", "site_masked_seeds", "site_masked_variation"),
                    "flowevo.domains.crystals.editing"),
    **dict.fromkeys(("composition_features", "feasible_seeds", "site_prescreen"), "flowevo.domains.crystals.screening"),
    **dict.fromkeys(("CrystalModels", "fit_crystal_models", "load_crystal_models", "save_crystal_models"),
                    "flowevo.domains.crystals.fitting"),
    **dict.fromkeys(("csv_columns", "edit_rows", "write_cifs", "write_edit_outputs"),
                    "flowevo.domains.crystals.outputs"),
    **dict.fromkeys(("changed_sites", "draw_cell", "draw_edit_pictures"), "flowevo.domains.crystals.pictures"),
    **dict.fromkeys(("ExhaustiveSearch", "SiteVocabulary", "substitute"), "flowevo.domains.crystals.exhaustive"),
    **dict.fromkeys(("gradient_edit", "leap_edit"), "flowevo.domains.crystals.search"),
    **dict.fromkeys(("load_edit_split",), "flowevo.domains.crystals.data"),
    **dict.fromkeys(("SoftSurrogate",), "flowevo.domains.crystals.differentiable"),
    **dict.fromkeys(("ElementJudge", "ElementStatsFeaturizer", "fit_element_judge", "judge_trust"),
                    "flowevo.domains.crystals.judges"),
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
