"""The crystal domain: fixed-size crystals (e.g. Perov-5 perovskites) from CDVAE-format CSVs.

Entry points: :func:`load_cdvae_csv` (data), :func:`train_crystal_flow` / :class:`CrystalModel`
(the property-conditioned flow; :func:`save_crystal_model` / :func:`load_crystal_model`),
:func:`fit_surrogate` and :class:`PropertyPredictor` (property predictors), :class:`CHGNetEnergy`
and :class:`FormationEnergy`, the site-masked edit (:class:`SiteMaskedCodec`, :class:`SiteVariation`),
the validity checks and objectives. The ``crystals.*`` built-ins, MODEL_DIR loader, trainer and CIF
writer are registered in :mod:`flowevo.domains.crystals.registration`.

Names are imported on first use, so ``import flowevo.domains.crystals`` does not load pymatgen.
"""

from flowevo.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("CrystalTable", "load_cdvae_csv", "split_indices"), "flowevo.domains.crystals.data"),
    **dict.fromkeys(("CrystalModel", "load_crystal_model", "save_crystal_model", "train_crystal_flow"),
                    "flowevo.domains.crystals.model"),
    **dict.fromkeys(("CrystalRepresentation",), "flowevo.domains.crystals.representation"),
    **dict.fromkeys(("SpeciesCode",), "flowevo.domains.crystals.species"),
    **dict.fromkeys(("PropertyPredictor", "fit_independent", "fit_surrogate", "load_predictor"),
                    "flowevo.domains.crystals.predictors"),
    **dict.fromkeys(("CHGNetEnergy", "FormationEnergy", "ReferenceEnergies"), "flowevo.domains.crystals.energy"),
    **dict.fromkeys(("composition_valid", "sites_changed", "space_group", "structure_valid"),
                    "flowevo.domains.crystals.validity"),
    **dict.fromkeys(("budget_constraint", "canonical_sources", "composition_validity_constraint",
                     "fingerprint_distance_objective", "formation_energy_objective", "property_objective",
                     "sites_changed_objective", "space_group_objective", "structure_validity_constraint",
                     "structures_payload"), "flowevo.domains.crystals.objectives"),
    **dict.fromkeys(("CompositionCheck", "energy_ceiling_constraint", "smact_strict_constraint"),
                    "flowevo.domains.crystals.constraints"),
    **dict.fromkeys(("GenomeLayout", "SiteMaskedCodec", "SiteVariation"), "flowevo.domains.crystals.site_edit"),
    **dict.fromkeys(("SoftSurrogate",), "flowevo.domains.crystals.differentiable"),
}

__all__ = [
    "CHGNetEnergy", "CompositionCheck", "CrystalModel", "CrystalRepresentation", "CrystalTable", "FormationEnergy",
    "GenomeLayout", "PropertyPredictor", "ReferenceEnergies", "SiteMaskedCodec", "SiteVariation", "SoftSurrogate",
    "SpeciesCode", "budget_constraint", "canonical_sources", "composition_valid", "composition_validity_constraint",
    "energy_ceiling_constraint", "fingerprint_distance_objective", "fit_independent", "fit_surrogate",
    "formation_energy_objective", "load_cdvae_csv", "load_crystal_model", "load_predictor", "property_objective",
    "save_crystal_model", "sites_changed", "sites_changed_objective", "smact_strict_constraint", "space_group",
    "space_group_objective", "split_indices", "structure_valid", "structure_validity_constraint",
    "structures_payload", "train_crystal_flow",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
