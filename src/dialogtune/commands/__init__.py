"""The command line's verbs, one short function each, and the one place they are registered.

Each verb parses its options and calls one library function; the work (and its tests)
lives in the library. Adding a verb: a function in a module here and a line in ``VERBS``
(and its line in README.md: tests/cli/test_cli_verbs.py compares the two).
"""

from __future__ import annotations

import typer

from . import advise, chat, data, evaluate, explain, export, predict, serve, study, train

# In the order ``dialogtune --help`` lists them (verb groups after the verbs).
VERBS = {"train": train.train, "eval": evaluate.evaluate, "predict": predict.predict,
         "explain": explain.explain,
         "chat": chat.chat, "generate": chat.generate, "export": export.export,
         "serve": serve.serve, "compare": study.compare, "curve": study.curve,
         "recommend": advise.recommend, "tune": advise.tune}
GROUPS = {"data": data.data_app}


def register(app: typer.Typer) -> None:
    """Add every verb and verb group to the main app."""
    for name, function in VERBS.items():
        app.command(name)(function)
    for name, group in GROUPS.items():
        app.add_typer(group, name=name)
