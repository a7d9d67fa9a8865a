"""Sampling strategies: one per method family, pure torch, explicit rng."""

from livedenoise.models.sampling.augment import dihedral, random_dihedral
from livedenoise.models.sampling.base import Sampler, TrainingPair
from livedenoise.models.sampling.neighbour_frame import OddEvenSplit

__all__ = ["Sampler", "TrainingPair", "OddEvenSplit", "dihedral", "random_dihedral"]
