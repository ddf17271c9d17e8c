"""``dialogtune explain``: why a run answered as it did, for one text.

- a classifier run (intent, NLU): which words pushed its intent up or down
  (``attribution``: integrated gradients or occlusion; ``intents``: the result);
- a causal-LM run (chat, pretrain): how likely it found each token of its reply
  (``reply``).

Shown by ``render`` (terminal colours, a standalone HTML page). The run's predictor is
loaded through its task's ``load_predictor`` and the choice is made by the task's model
kind, never by its name.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DialogtuneError

__all__ = ["explain_run"]


def load_run_predictor(run: str | Path, policy=None):
    """(model kind, predictor) of a trained run, through the task registry."""
    from ...config import read_run_config
    from ...runs.layout import RunDir
    from ...tasks import get_task  # the registry only: inference never imports a task

    task = get_task(read_run_config(RunDir(Path(run)).require_trained().path).task)
    return task.model_kind, task.load_predictor(run, policy)


def explain_run(run: str | Path, text: str, method: str | None = None,
                target_intent: str | None = None, reply: str | None = None, top_k: int = 5,
                max_new_tokens: int = 64, html: str | Path | None = None,
                policy=None) -> dict:
    """The explanation of ``text`` by ``run`` as a dict (``tokens``, ``attributions``,
    ``intent``, ...); ``html`` also writes it as a page (atomically).

    Classifier runs take ``method`` (``ig`` or ``occlusion``, default from the benchmark)
    and ``target_intent``; causal-LM runs take ``reply`` (default: their own reply to
    ``text``) and ``max_new_tokens``. ``top_k``: intents ranked, or least likely tokens.
    """
    from ...strategies import CAUSAL_LM
    from .render import write_html

    if not text or not text.strip():
        raise DialogtuneError("TEXT is empty: give the utterance to explain")
    kind, predictor = load_run_predictor(run, policy)
    if kind == CAUSAL_LM:
        if method is not None or target_intent is not None:
            raise DialogtuneError(f"{run}: --method and --target-intent are for intent and "
                                  "NLU runs; a chat run's reply is scored token by token")
        result = _reply(predictor, text, reply, top_k, max_new_tokens)
    else:
        if reply is not None:
            raise DialogtuneError(f"{run}: --reply is for chat runs, not intent or NLU runs")
        result = _classifier(predictor, text, method, target_intent, top_k)
    if html is not None:
        write_html(result, html)
    return result


def _reply(predictor, text, reply, top_k, max_new_tokens) -> dict:
    from .reply import explain_reply

    return explain_reply(predictor, text, reply, top_k, max_new_tokens)


def _classifier(predictor, text, method, target_intent, top_k) -> dict:
    from .intents import DEFAULT_METHOD, explain_classifier

    return explain_classifier(predictor, text, method or DEFAULT_METHOD, target_intent,
                              top_k)
