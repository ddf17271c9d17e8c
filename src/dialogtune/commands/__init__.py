"""CLI verb groups beyond train/eval/predict, each registered on the main app by ``register``."""
