"""The command line's shape: verbs registered in one place, all documented, kept thin."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import typer.main

from dialogtune import commands
from dialogtune.cli import app
from helpers import ROOT

SRC = ROOT / "src" / "dialogtune"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMAND = re.compile(r"^\s*dialogtune (data )?([a-z][a-z-]*)", re.MULTILINE)


def documented_verbs() -> set[str]:
    """``verb`` and ``data verb`` from README.md's command blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = set()
    for block in FENCE.findall(text):
        for group, verb in COMMAND.findall(block):
            found.add(f"{group}{verb}".strip() if group else verb)
    return found


def registered_verbs() -> set[str]:
    group = typer.main.get_command(app)
    found = set()
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found.update(f"{name} {sub}" for sub in subcommands)
        else:
            found.add(name)
    return found


def test_the_readme_parser_sees_verbs_and_data_verbs():
    verbs = documented_verbs()
    assert {"train", "eval", "predict", "data check", "data export-logs"} <= verbs
    assert "data" not in verbs


def test_every_registered_verb_is_documented_and_every_documented_verb_registered():
    registered, documented = registered_verbs(), documented_verbs()
    assert registered - documented == set(), "registered but not in README.md"
    assert documented - registered == set(), "in README.md but not registered"


def test_verbs_live_in_commands_and_are_short():
    group = typer.main.get_command(app)
    callbacks = [c.callback for c in group.commands.values() if c.callback is not None]
    callbacks += [sub.callback for c in group.commands.values()
                  for sub in getattr(c, "commands", {}).values()]
    for callback in callbacks:
        function = inspect.unwrap(callback)
        assert function.__module__.startswith("dialogtune.commands."), function.__module__
        lines = len(inspect.getsource(function).splitlines())
        assert lines <= 50, f"{function.__qualname__}: {lines} lines"


def test_cli_module_defines_no_verb():
    tree = ast.parse((SRC / "cli.py").read_text(encoding="utf-8"))
    decorated = [node.name for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef) and node.decorator_list]
    assert decorated == []
    registered = set(typer.main.get_command(app).commands)
    assert set(commands.VERBS) | set(commands.GROUPS) == registered


def private_imports(path: Path) -> list[str]:
    """``from x import _name`` and ``x._name`` uses of another module, in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            if any(part.startswith("_") for part in (node.module or "").split(".")):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names
                      if any(part.startswith("_") for part in a.name.split("."))]
    return [name for name in found if name != "__future__"]


def test_private_import_reader(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("from .cli import _quiet\nimport a._b\nfrom __future__ import annotations\n",
                    encoding="utf-8")
    assert private_imports(path) == ["cli._quiet", "a._b"]


def test_demos_import_no_private_names():
    for name in ("demo.py", "demo_chat.py", "demo_tools.py"):
        assert private_imports(SRC / name) == [], name


def test_role_packages_import_no_torch():
    """``models``, ``inference`` and ``export`` re-export nothing: importing the package
    alone (as ``import dialogtune`` and ``--help`` might) stays free of torch."""
    probe = ("import sys\nimport dialogtune.models, dialogtune.inference, dialogtune.export\n"
             "import dialogtune.commands\n"
             "assert 'torch' not in sys.modules, 'torch imported by a package __init__'\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_wrong_precision_is_refused_before_anything_loads(capsys):
    from dialogtune.cli import main

    for argv in (["chat", "no-such-run", "--precision", "x"],
                 ["generate", "no-such-run", "hi", "--precision", "fp16"],
                 ["serve", "--chat", "no-such-run", "--precision", "bf17"]):
        assert main(argv) == 2
        assert "expected one of auto, fp32, bf16" in capsys.readouterr().err
