"""dialogtune: turn a pretrained language model into a domain dialogue system."""

from .config import RunConfig, load_config
from .errors import DataError, DialogtuneError
from .pipeline import evaluate_run, train_run
from .predictor import Predictor

__all__ = ["RunConfig", "load_config", "DataError", "DialogtuneError", "Predictor",
           "train_run", "evaluate_run"]
__version__ = "0.1.0"
