"""The training spec's fields as options of `ganforge train`, read from the spec's own schema."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer

from workers.shared.contract import TrainingSpec

SPEC_PANEL = "Training spec (left out: the API's default)"
JSON_TYPES: dict[str, type] = {"integer": int, "number": float, "boolean": bool, "string": str}


def _spec_parameter(name: str, schema: dict[str, Any]) -> inspect.Parameter:
    """A `--name` option for one field of the training spec, typed, described and defaulted as the API
    documents it. None (left out) lets the API apply its default."""
    kind = next(option for option in schema.get("anyOf", [schema]) if option.get("type") != "null")
    if kind["type"] == "array":  # betas: a fixed number of numbers, `--betas 0.5 0.999`
        python_type: Any = tuple[tuple(JSON_TYPES[item["type"]] for item in kind["prefixItems"])]
    elif kind["type"] == "string" and "enum" in kind:
        python_type = Literal[tuple(kind["enum"])]
    else:
        python_type = JSON_TYPES[kind["type"]]
    notes = [schema.get("description", "")]
    if "enum" in kind and kind["type"] != "string":  # image_size: checked by the API
        notes.append(f"One of {', '.join(map(str, kind['enum']))}.")
    if schema.get("default") is not None:
        notes.append(f"Default: {schema['default']}.")
    option = typer.Option(
        help=" ".join(filter(None, notes)),
        rich_help_panel=SPEC_PANEL,
    )
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[python_type | None, option]
    )


def with_spec_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` (which takes the fields as `**spec`) one option per training-spec field but
    `dataset_id`, read from the spec's schema: Typer builds options from the signature, so a field the
    API gains is an option here with no change."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    fields = TrainingSpec.model_json_schema()["properties"]
    spec = [_spec_parameter(name, schema) for name, schema in fields.items() if name != "dataset_id"]
    command.__signature__ = signature.replace(parameters=[*own, *spec])  # type: ignore[attr-defined]
    return command
