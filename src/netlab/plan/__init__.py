"""Topology -> ordered steps, each with its undo. Pure: a dry run prints it."""

from netlab.plan.planner import marker, plan
from netlab.plan.steps import Phase, Plan, Step

__all__ = ["Phase", "Plan", "Step", "marker", "plan"]
