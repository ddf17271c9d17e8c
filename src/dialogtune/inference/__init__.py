"""Inference on trained runs: the intent predictor (``intent``), the chat predictor and its
replies (``chat``) and token decoding (``generation``).

Nothing is imported here (the submodules import torch); import from the submodule.
"""
