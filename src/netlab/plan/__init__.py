"""Topology -> ordered steps, each with its undo. Pure: a dry run prints it.

``netlab.plan.planner`` (which needs the pydantic models) is imported where a plan is made, so
that a plan read back from :mod:`netlab.plan.cache` costs no pydantic import.
"""

from netlab.plan.steps import Phase, Plan, Step

__all__ = ["Phase", "Plan", "Step"]
