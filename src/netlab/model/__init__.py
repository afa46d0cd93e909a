"""Topology data: the YAML format, its validation and its JSON Schema. No kernel access here.

Submodules are imported where used (``netlab.model.loader``, ``netlab.model.topology``) so
that light commands such as ``netlab down`` never load pydantic.
"""
