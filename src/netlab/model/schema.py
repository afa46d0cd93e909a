"""The JSON Schema of the topology format, for editors (yaml-language-server) and CI linters.

Generated from the models, so it can never disagree with what ``netlab validate`` accepts on
shape; cross-reference rules (dangling endpoints, unreachable gateways) are beyond a schema.
"""

from __future__ import annotations

from typing import Any

from netlab.model.topology import Topology

SCHEMA_ID = "https://netlab.invalid/schema/topology.json"


def topology_schema() -> dict[str, Any]:
    """The schema as a dict, ready for ``json.dumps``."""
    schema = Topology.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
