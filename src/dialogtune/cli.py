"""The ``dialogtune`` command line: the app, ``main`` and its exit codes.

The verbs are in ``commands/`` (one short function each, registered in
``commands/__init__.py``).
"""

from __future__ import annotations

import logging
import sys

import typer

from .commands import register
from .errors import DialogtuneError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune, evaluate and serve domain dialogue models (intent and chat).")
log = logging.getLogger("dialogtune")


def quiet_libraries() -> None:
    """Keep the terminal for dialogtune's own progress and results.

    Environment variables rather than transformers' logging calls, so that commands which
    never load a model (``data check``, ``--help``) do not import transformers (~0.4 s).
    """
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if "transformers" in sys.modules:  # already imported (in-process callers): env is read
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


register(app)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="dialogtune: %(message)s")
    quiet_libraries()
    try:
        app(args=argv, standalone_mode=False)
    except DialogtuneError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted; continue with: dialogtune train --resume --output RUN", err=True)
        return 130
    except (typer.Abort,):
        return 1
    except Exception as exc:  # usage errors, from click or from typer's own copy of click
        import click

        if isinstance(exc, (click.exceptions.ClickException, typer.TyperException)):
            exc.show()
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
