"""What every command shares: the connection (`--url`, `--key`, `--json`), the HTTP client, printing,
and the exit codes scripts can rely on (docs/cli.md)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from typer.core import TyperOption

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT = httpx.Timeout(60, connect=10)  # the API waits up to GANFORGE_SYNC_WAIT_SECONDS (30 s) itself

# Tables go to stdout; piped, rich would fold them at 80 columns, so they get room for whole lines.
stdout = Console(width=None if sys.stdout.isatty() else 1000)
stderr = Console(stderr=True)  # progress bars


class ExitCode(IntEnum):
    OK = 0
    JOB_FAILED = 1  # the job ended failed or canceled
    USAGE = 2  # Click's own code for a bad command line
    CLIENT_ERROR = 3  # the API answered 4xx: the request was at fault
    SERVER_ERROR = 4  # the API answered 5xx, or could not be reached


def fail(code: ExitCode, message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


chosen: dict[str, Any] = {}
"""`--url`, `--key` and `--json` as given on this process's command line."""


def _remember(ctx: typer.Context, param: TyperOption, value: Any) -> None:
    """Options given at any level of the command line (`ganforge --json models ls` or `ganforge models ls
    --json`) are remembered; the innermost wins, as it is parsed last."""
    if value is not None and value is not False:
        chosen[param.name] = value


def add_connection_options(command: Any) -> None:
    """Give `command` (Typer's Click command for the app) and every sub-command `--url`, `--key` and
    `--json`."""
    described = {
        "--url": f"The API's address (env GANFORGE_URL; default {DEFAULT_URL})",
        "--key": "An API key, sent as `Authorization: Bearer` (env GANFORGE_API_KEY)",
        "--json": "Print the API's JSON on stdout",
    }
    command.params += [
        TyperOption(
            param_decls=[name],
            is_flag=name == "--json",
            callback=_remember,
            expose_value=False,
            help=help,
            rich_help_panel="Connection",
        )
        for name, help in described.items()
    ]
    for sub in getattr(command, "commands", {}).values():  # a group's
        add_connection_options(sub)


@dataclass(frozen=True)
class Connection:
    url: str
    key: str | None
    json: bool

    @classmethod
    def current(cls) -> Connection:
        return cls(
            url=chosen.get("url") or os.environ.get("GANFORGE_URL") or DEFAULT_URL,
            key=chosen.get("key") or os.environ.get("GANFORGE_API_KEY") or None,
            json=chosen.get("json", False),
        )


def json_output() -> bool:
    return Connection.current().json


class Api:
    """The API over HTTP. A request that fails ends the command: a 4xx exits 3, a 5xx or no answer 4,
    each with the API's `detail` on stderr."""

    def __init__(self, connection: Connection):
        headers = {"Authorization": f"Bearer {connection.key}"} if connection.key else {}
        self.url = connection.url.rstrip("/")
        self.json = connection.json
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)

    @classmethod
    def current(cls) -> Api:
        return cls(Connection.current())

    def request(self, method: str, path: str, **arguments: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **arguments)
        except httpx.TransportError as error:
            fail(ExitCode.SERVER_ERROR, f"cannot reach {self.url}: {error}")
        if response.is_success:
            return response
        self.refuse(response)

    def get(self, path: str, **arguments: Any) -> httpx.Response:
        return self.request("GET", path, **arguments)

    def post(self, path: str, **arguments: Any) -> httpx.Response:
        return self.request("POST", path, **arguments)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)

    def refuse(self, response: httpx.Response) -> NoReturn:
        """End the command on an error answer, saying what the API said."""
        code = ExitCode.CLIENT_ERROR if response.status_code < 500 else ExitCode.SERVER_ERROR
        if self.json:
            typer.echo(response.text, err=True)
            raise typer.Exit(code)
        fail(code, f"{response.status_code} {response.reason_phrase}: {describe_error(response)}")


def describe_error(response: httpx.Response) -> str:
    """The `detail` of an error answer as one line: a 422's fields at fault, `loc: msg` each."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return response.text.strip() or "(no detail)"
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(part) for part in issue.get('loc', []))}: {issue.get('msg')}" for issue in detail
        )
    return str(detail)


def given(**values: Any) -> dict[str, Any]:
    """The values given on the command line: a request leaves the others out, for the API's defaults.
    A repeatable option that was not given arrives empty."""
    return {name: value for name, value in values.items() if value is not None and value not in ((), [])}


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def write_output(output: Path, content: bytes) -> None:
    """Write `content` to `output`, or to stdout for `-`."""
    if str(output) == "-":
        typer.get_binary_stream("stdout").write(content)
        return
    output.write_bytes(content)
    typer.echo(f"wrote {output} ({len(content):,} bytes)", err=True)
