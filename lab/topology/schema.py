"""The JSON Schema of the topology format, for editors and other tools."""

from __future__ import annotations

import json

from lab.topology.model import TopologySpec

SCHEMA_FILE = "schema/topology.schema.json"


def topology_schema() -> dict:
    schema = TopologySpec.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "lab topology", **schema}


def topology_schema_text() -> str:
    return json.dumps(topology_schema(), indent=2, sort_keys=True) + "\n"
