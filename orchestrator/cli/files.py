"""`taskforce files`: look at and tidy the shared files from a shell, as the agents see them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.files import read_text, shared_files
from shared.files.workspace import DEFAULT_RUN
from shared.settings import Settings

files_cli = typer.Typer(help="List, read, upload and prune the shared files.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 120)

RunOption = Annotated[
    str, typer.Option("--run", "-r", help="Whose workspace '/' means (the run id the CLI printed).")
]


@files_cli.command("ls")
def list_files(path: Annotated[str, typer.Argument()] = "/", run: RunOption = DEFAULT_RUN) -> None:
    """List PATH: files with sizes, directories with a trailing '/'."""
    listing = shared_files(Settings()).for_run(run).ls(path)
    if listing.error:
        raise typer.BadParameter(listing.error, param_hint="PATH")
    table = Table("path", "size", "modified")
    for entry in listing.entries or []:
        table.add_row(
            entry["path"],
            "" if entry.get("is_dir") else str(entry.get("size", "")),
            entry.get("modified_at", ""),
        )
    console.print(table)


@files_cli.command("cat")
def show_file(path: str, run: RunOption = DEFAULT_RUN) -> None:
    """Print the file at PATH."""
    try:
        text = read_text(shared_files(Settings()).for_run(run), path)
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error), param_hint="PATH") from None
    sys.stdout.write(text)


@files_cli.command("put")
def put_file(
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    path: str,
    run: RunOption = DEFAULT_RUN,
) -> None:
    """Upload the local file SOURCE to PATH, e.g. a skill to /skills/<name>/SKILL.md."""
    (response,) = shared_files(Settings()).for_run(run).upload_files([(path, source.read_bytes())])
    if response.error:
        raise typer.BadParameter(f"{path}: {response.error}", param_hint="PATH")
    console.print(f"{source} -> {path}")


@files_cli.command("prune")
def prune(
    older_than: Annotated[
        int | None,
        typer.Option(help="Seconds since a workspace's last write (default: TASKFORCE_FILES_WORKSPACE_TTL)."),
    ] = None,
) -> None:
    """Delete run workspaces nobody wrote to lately (S3 and file://; Redis expires them itself)."""
    settings = Settings()
    pruned = shared_files(settings).prune(
        older_than if older_than is not None else settings.files_workspace_ttl
    )
    console.print(f"pruned {len(pruned)} workspace(s){': ' + ', '.join(pruned) if pruned else ''}")
