"""Evolution layer: population, operators, survival, termination and the ask/tell Evolver."""

from flowevo.evolve.archive import Archive
from flowevo.evolve.checkpoint import Checkpointer, load_run_state, save_run_state
from flowevo.evolve.constraints import LagrangianPenalty, Multipliers
from flowevo.evolve.evolver import Evolver, Survival
from flowevo.evolve.history import GenerationRecord, summarise_generation
from flowevo.evolve.operators import (
    BlockMask,
    CrossPollination,
    PreScreen,
    SearchContext,
    SelfPollination,
    ShellRepair,
    Slerp,
    Transfer,
    UniformMask,
    Variation,
    VariationStrategy,
)
from flowevo.evolve.population import CROSS, ORIGINS, SEED, SELF, Population
from flowevo.evolve.result import EditResult
from flowevo.evolve.seeds import LIFT_DEPTHS, Distance, rank_seeds, seed_pool, slerp_ladder
from flowevo.evolve.surrogate import RowArchive, RowGP
from flowevo.evolve.survival import Elitist, HypervolumeContribution, RankAndCrowding, hypervolume, non_dominated
from flowevo.evolve.task import EditTask
from flowevo.evolve.termination import MaxEvaluations, MaxGenerations, Stagnation

__all__ = [
    "Archive", "BlockMask", "CROSS", "Checkpointer", "CrossPollination", "Distance", "EditResult", "EditTask",
    "Elitist", "Evolver", "GenerationRecord", "HypervolumeContribution", "LIFT_DEPTHS", "LagrangianPenalty",
    "MaxEvaluations", "MaxGenerations", "Multipliers", "ORIGINS", "Population", "PreScreen", "RankAndCrowding",
    "RowArchive", "RowGP", "SEED", "SELF", "SearchContext", "SelfPollination", "ShellRepair", "Slerp", "Stagnation",
    "Survival", "Transfer", "UniformMask", "Variation", "VariationStrategy", "hypervolume", "load_run_state",
    "non_dominated", "rank_seeds", "save_run_state", "seed_pool", "slerp_ladder", "summarise_generation",
]
