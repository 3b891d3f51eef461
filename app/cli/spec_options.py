"""The training spec's fields as options of `ganforge train`, read from the spec's own schema."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer

from workers.shared.contract import TrainingSpec

SPEC_PANEL = "Training spec (left out: the API's default)"
JSON_TYPES: dict[str, type] = {"integer": int, "number": float, "boolean": bool, "string": str}


def _python_type(kind: dict[str, Any]) -> Any:
    if kind["type"] == "string" and "enum" in kind:
        return Literal[tuple(kind["enum"])]
    return JSON_TYPES[kind["type"]]


def _spec_parameter(name: str, schema: dict[str, Any]) -> inspect.Parameter:
    """A `--name` option for one field of the training spec, typed, described and defaulted as the API
    documents it. None (left out) lets the API apply its default."""
    kind = next(option for option in schema.get("anyOf", [schema]) if option.get("type") != "null")
    if kind["type"] == "array" and "prefixItems" in kind:  # betas: `--betas 0.5 0.999`
        python_type: Any = tuple[tuple(_python_type(item) for item in kind["prefixItems"])]
    elif kind["type"] == "array":  # webhook_events_filter: repeated, checked by the API
        item_type = JSON_TYPES[kind["items"]["type"]]
        python_type = list[item_type]  # type: ignore[valid-type]
    else:
        python_type = _python_type(kind)
    notes = [schema.get("description", "")]
    if "enum" in kind and kind["type"] != "string":  # image_size: checked by the API
        notes.append(f"One of {', '.join(map(str, kind['enum']))}.")
    if "enum" in kind.get("items", {}):
        notes.append(f"Repeat the option for several of {', '.join(kind['items']['enum'])}.")
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
