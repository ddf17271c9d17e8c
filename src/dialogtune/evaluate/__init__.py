"""Evaluation: pure metric functions, task evaluators and plots."""
