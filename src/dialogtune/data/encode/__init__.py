"""Records → model inputs: intent and chat token encoding, batches and ``data inspect``."""
