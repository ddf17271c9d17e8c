"""dialogtune: turn a pretrained language model into a domain dialogue system.

The public names are resolved on first use (PEP 562) so that light commands such as
``dialogtune data check`` do not pay for importing torch and transformers (~1 s).
"""

from importlib import import_module

_EXPORTS = {
    "RunConfig": ".config", "load_config": ".config",
    "DataError": ".errors", "DialogtuneError": ".errors",
    "train_run": ".pipeline", "evaluate_run": ".pipeline",
    "Predictor": ".inference.intent",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dialogtune' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
