"""Learning solvers from a teacher: S4S, S4S-Alt, and LD3 / joint for comparison."""

from .config import LearnConfig
from .learner import (CANDIDATE_SCHEDULES, CANDIDATE_SOLVERS, METHODS, LearnEvent, learn, parse_start,
                      planned_steps)
from .objectives import DISTANCES, get_distance
from .pairs import split_pairs
from .params import SolverParams
from .policies import Guard, RankStarts, StepBudget
from .recipes import JOINT, LD3, RECIPES, S4S, S4S_ALT, Phase, Recipe, parse_plan

__all__ = ["learn", "planned_steps", "LearnConfig", "LearnEvent", "METHODS", "CANDIDATE_SOLVERS", "CANDIDATE_SCHEDULES", "SolverParams",
           "DISTANCES", "get_distance", "parse_plan", "parse_start", "split_pairs", "Guard", "RankStarts", "StepBudget",
           "Phase", "Recipe", "RECIPES", "S4S", "S4S_ALT", "LD3", "JOINT"]
