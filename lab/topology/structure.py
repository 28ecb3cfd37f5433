"""Pass one: the shape of the file (types, required fields, unknown keys, kinds).

pydantic does the checking; this module rewords its errors for people, with
the position of the key or value in the YAML file and a "did you mean" where
a name was probably mistyped.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from lab.topology.errors import Problem, TopologyError
from lab.topology.model import KINDS, NAME_PATTERN, TopologySpec
from lab.topology.yaml_source import Source


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """' did you mean 'x'?' when a close match exists, else ''."""
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _field_keys(model: type[BaseModel]) -> dict[str, Any]:
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def _model_at(loc: tuple, root: type[BaseModel] = TopologySpec) -> type[BaseModel] | None:
    """The model class that validates the mapping at loc, following pydantic's loc steps."""
    current: Any = root
    steps = list(loc)
    while steps:
        current = _unwrap(current)
        step = steps.pop(0)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            current = _field_keys(current).get(step)
            if current is None:
                return None
        elif origin in (dict, list, tuple):
            current = typing.get_args(current)[-1]
        elif origin is typing.Union:
            members = [_unwrap(m) for m in typing.get_args(current)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            tagged = [m for m in models if step in typing.get_args(m.model_fields.get("kind").annotation)] \
                if all("kind" in m.model_fields for m in models) else []
            if tagged:
                current = tagged[0]
            elif models:
                current = models[0]
                steps.insert(0, step)
            else:
                return None
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _clean_loc(loc: tuple, data: Any) -> tuple:
    """Drop pydantic's own steps (union tags, '[key]') so loc matches the file's paths."""
    path: list = []
    node = data
    tag_skipped = False
    for step in loc:
        if step == "[key]":
            continue
        if (len(path) == 2 and path[0] == "nodes" and not tag_skipped and isinstance(node, dict)
                and node.get("kind") == step):
            tag_skipped = True
            continue  # the kind tag pydantic inserts, even where it is also a key (database)
        if isinstance(node, dict) and step in node:
            node = node[step]
            path.append(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
            path.append(step)
        elif isinstance(node, dict) and node.get("kind") == step:
            continue  # the discriminator tag pydantic inserts for node kinds
        else:
            path.append(step)
            node = None
    return tuple(path)


def _describe(value: Any) -> str:
    """A value as the user wrote it: never a Python repr, control characters escaped."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(value))
    return f"'{text}'" if isinstance(value, str) else text


def _plain_message(kind: str, ctx: dict, value: Any) -> str | None:
    """pydantic's wording for common mistakes, said in the topology's words."""
    got = _describe(value)
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return (f"{got} is not a usable name: use lower-case letters, digits and '-', starting "
                "with a letter and at most 32 characters (it becomes a host name)")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number here, like 8080; got {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false here; got {got}"
    if kind == "string_type":
        return f"expected a text here; got {got} (put quotes around it if it is meant as text)"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{got} is too small here: the least allowed is {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"{got} is too large here: the most allowed is {ctx.get('le', ctx.get('lt'))}"
    return None


def _problem(source: Source, error: dict) -> Problem:
    kind = error["type"]
    loc = _clean_loc(error["loc"], source.data)
    value = error.get("input")
    if kind == "extra_forbidden":
        model = _model_at(error["loc"][:-1])
        allowed = sorted(_field_keys(model)) if model else []
        hint = suggest(loc[-1], allowed) or (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        return source.problem(loc, f"unknown key '{loc[-1]}'{hint}", at_key=True)
    if kind == "missing":
        return source.problem(loc, f"missing required key '{loc[-1]}'", at_key=True,
                              mark_path=loc[:-1] or ())
    if kind == "union_tag_invalid" and not isinstance(value, dict) or kind == "union_tag_invalid" \
            and value.get("kind") is None:
        return source.problem((*loc, "kind"), f"'kind' is empty: say what this node is, one of "
                              f"{', '.join(KINDS)}")
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        return source.problem((*loc, "kind"), f"unknown kind '{tag}'{suggest(tag, KINDS)} "
                              f"(kinds: {', '.join(KINDS)})")
    if kind == "union_tag_not_found":
        written = [key for key in value if str(key).lower() == "kind"] if isinstance(value, dict) else []
        if written:
            return source.problem((*loc, written[0]), f"'{written[0]}' should be 'kind': keys are "
                                  "written in lower case", at_key=True)
        return source.problem(loc, f"missing 'kind': say what this node is, one of {', '.join(KINDS)}",
                              at_key=True)
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",")]
        return source.problem(loc, f"{_describe(value)} is not allowed here{suggest(value, choices)} "
                              f"(use one of {expected})")
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return source.problem(loc, f"expected a mapping of 'key: value' lines here, got {_describe(value)}")
    if kind in ("list_type", "tuple_type"):
        return source.problem(loc, f"expected a list here, got {_describe(value)}")
    plain = _plain_message(kind, error.get("ctx", {}), value)
    if plain:
        return source.problem(loc, plain)
    message = error["msg"].removeprefix("Value error, ")
    if kind != "value_error":
        message = f"{message[0].lower()}{message[1:]} (got {_describe(value)})"
    return source.problem(loc, message)


def validate_structure(source: Source) -> TopologySpec:
    """Validate the file's shape; raise TopologyError listing every problem."""
    if not isinstance(source.data, dict):
        raise TopologyError([source.problem((), "a topology is a mapping with 'name', "
                                             "'networks' and 'nodes' at the top")])
    try:
        return TopologySpec.model_validate(source.data)
    except ValidationError as error:
        errors = _drop_missing_that_were_misspelt(error.errors())
        raise TopologyError([_problem(source, item) for item in errors]) from None


def _drop_missing_that_were_misspelt(errors: list[dict]) -> list[dict]:
    """'netwroks: unknown key; did you mean networks?' already says networks is missing."""
    misspelt = set()
    for item in errors:
        if item["type"] == "extra_forbidden":
            model = _model_at(item["loc"][:-1])
            guess = difflib.get_close_matches(str(item["loc"][-1]), list(_field_keys(model)) if model else [],
                                              n=1, cutoff=0.6)
            misspelt.update((item["loc"][:-1], word) for word in guess)
    return [item for item in errors
            if not (item["type"] == "missing" and (item["loc"][:-1], item["loc"][-1]) in misspelt)]
