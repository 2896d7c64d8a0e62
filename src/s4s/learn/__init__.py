"""Learning solvers from a teacher: S4S, S4S-Alt, and LD3 / joint for comparison."""

from .learner import (CANDIDATE_SCHEDULES, CANDIDATE_SOLVERS, METHODS, LearnEvent, learn, parse_plan, parse_start,
                      plan_string, split_pairs)
from .objectives import DISTANCES, get_distance
from .params import SolverParams

__all__ = ["learn", "LearnEvent", "METHODS", "CANDIDATE_SOLVERS", "CANDIDATE_SCHEDULES", "SolverParams",
           "DISTANCES", "get_distance", "parse_plan", "parse_start", "plan_string", "split_pairs"]
