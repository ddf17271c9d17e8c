"""Models: loading (aliases, folders, hub ids, safe weights), the causal LM helpers and the
joint NLU model.

Nothing is imported here: the submodules import torch, and ``import dialogtune`` and
``dialogtune --help`` must not. Import from the submodule (``dialogtune.models.loading``).
"""
