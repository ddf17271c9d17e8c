"""``dialogtune data ...``: check, fix, convert, split, sample, inspect, export-logs."""

from __future__ import annotations

import typer

data_app = typer.Typer(no_args_is_help=True, help="Check, clean, convert and split domain data.")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
