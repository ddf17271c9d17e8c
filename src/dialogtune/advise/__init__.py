"""Advice above training: which settings to train with (``recommend``: measured steps and a
time estimate) and which settings train best (``tune``: an Optuna search over runs).

Orchestration like ``pipeline.py``: it runs real training through ``pipeline.train_run`` and
learns about tasks and strategies only through their registries.
"""
