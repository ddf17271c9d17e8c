"""Test set-up, once for every test: the environment, and the shared fixtures.

Fixtures live in ``helpers/`` (tiny in-process models and data sets) and are registered
here, so no test module imports a fixture; plain helpers (data writers, constants, paths)
are imported from ``helpers``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an uncached hub id fails in ~50 s otherwise
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ("helpers.intent", "helpers.chat", "helpers.serve")
