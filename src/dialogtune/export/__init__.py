"""Exporting a chat run: a Hugging Face / peft folder (``hf``) or a GGUF file (``gguf``).

Nothing is imported here (the submodules import torch); import from the submodule.
"""
