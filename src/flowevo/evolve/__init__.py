"""Evolution layer: population, operators, survival, termination and the ask/tell Evolver."""

from flowevo.evolve.checkpoint import Checkpointer, load_run_state, model_identity, save_run_state
from flowevo.evolve.constraints import LagrangianPenalty, Multipliers
from flowevo.evolve.evolver import EvolutionResult, Evolver
from flowevo.evolve.history import GenerationRecord
from flowevo.evolve.operators import (
    BlockMask, CrossPollination, SelfPollination, ShellRepair, Slerp, UniformMask, Variation,
)
from flowevo.evolve.population import CROSS, ORIGINS, SEED, SELF, Population
from flowevo.evolve.survival import Elitist, RankAndCrowding, hypervolume, non_dominated
from flowevo.evolve.task import EditTask
from flowevo.evolve.termination import MaxEvaluations, MaxGenerations, Stagnation

__all__ = [
    "BlockMask", "CROSS", "Checkpointer", "load_run_state", "model_identity", "save_run_state", "CrossPollination", "EditTask", "Elitist", "EvolutionResult", "Evolver",
    "GenerationRecord", "LagrangianPenalty", "MaxEvaluations", "Multipliers", "MaxGenerations", "ORIGINS", "Population", "RankAndCrowding", "SEED",
    "SELF", "SelfPollination", "ShellRepair", "Slerp", "Stagnation", "UniformMask", "Variation", "hypervolume",
    "non_dominated",
]
