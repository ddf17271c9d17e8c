"""Where the repository's files are, for tests that read them (examples, sources, configs)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "dialogtune"
EXAMPLES = ROOT / "examples"
