"""Run a chat model over held-out dialogues → perplexity, BLEU, ROUGE-L, slot recall.

- ``nll`` / ``perplexity``: teacher forcing through the chat template with exactly the
  training mask (``data.encode.chat.encode_dialogues``): mean NLL per held-out assistant token.
- Generation metrics: greedy replies to the first ``generate_turns`` trained assistant
  turns (in file order), each given the dialogue up to that turn; BLEU (sacrebleu corpus),
  mean ROUGE-L F1 and slot-value recall (``metrics.slot_value_recall``) against the
  reference replies.
- Tool-calling data (any tools, call or result): the ``tool_calls`` and ``grounding``
  blocks too, over the turns ``chat_tools.tool_turns`` picks (up to ``generate_turns``
  call turns and the word turns among them); BLEU, ROUGE-L and slot recall then cover the
  word turns. A run trained without tools is scored as it was trained (``chat_tools``).
The same functions score a run, its base model and any other model (the benchmark's peer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..data.encode.chat import encode_dialogues, message_dicts
from ..data.encode.tools import call_text, dialogues_use_tools
from ..data.records import Dialogue
from ..data.tool_calls import message_calls
from .chat_tools import (ToolTurn, respond_turns, shown, token_budget, tool_blocks, tool_turns,
                         without_tools)
from .metrics import bleu_tokenizer, corpus_bleu, mean_rouge_l, slot_value_recall


@dataclass
class TurnSample:
    """One assistant turn to reproduce: the dialogue before it and the reference reply."""

    context: list[dict]
    reference: str
    slot_values: list[str]
    dialogue_id: str


def generation_samples(dialogues: list[Dialogue], limit: int) -> list[TurnSample]:
    """The first ``limit`` trained assistant turns, with the user slot values seen so far."""
    samples: list[TurnSample] = []
    for number, dialogue in enumerate(dialogues):
        messages, values = message_dicts(dialogue), []
        for i, message in enumerate(dialogue.messages):
            if message.role == "user":
                values += [s["value"] for s in message.extra.get("slots") or []
                           if isinstance(s, dict) and isinstance(s.get("value"), str)]
            if message.role == "assistant" and message.weight != 0 and i > 0:
                if len(samples) >= limit:
                    return samples
                samples.append(TurnSample(messages[:i], message.content, list(values),
                                          str(dialogue.extra.get("id", number + 1))))
    return samples


def perplexity_metrics(model, tokenizer, dialogues: list[Dialogue],
                       max_length: int | None) -> dict:
    """Mean NLL and perplexity over held-out assistant tokens (the training mask)."""
    from ..models.lm import mean_nll

    encoded, stats = encode_dialogues(tokenizer, dialogues, max_length)
    scores = mean_nll(model, encoded, tokenizer.pad_token_id or 0)
    return {"nll": scores["nll"], "perplexity": scores["perplexity"],
            "assistant_tokens": scores["tokens"], "dialogues": stats.kept,
            "dropped_turns": stats.dropped_turns}


def generate_replies(predictor, samples: list[TurnSample], max_new_tokens: int) -> list[str]:
    """Greedy replies (deterministic, so base and tuned models are compared fairly)."""
    return [predictor.chat(s.context, max_new_tokens=max_new_tokens, temperature=0.0)
            for s in samples]


def reply_metrics(samples: list[TurnSample], replies: list[str]) -> dict:
    """BLEU, ROUGE-L and slot-value recall of ``replies`` against the references."""
    references = [s.reference for s in samples]
    recall, counted = slot_value_recall(replies, references, [s.slot_values for s in samples])
    tokenizer = bleu_tokenizer(references)  # chosen per data set, recorded beside the score
    return {"bleu": corpus_bleu(replies, references, tokenizer), "bleu_tokenizer": tokenizer,
            "rouge_l": mean_rouge_l(replies, references),
            "rouge_l_unit": "character" if tokenizer != "13a" else "word",
            "slot_value_recall": recall, "slot_values_counted": counted,
            "generated_turns": len(replies)}


def evaluate_predictor(predictor, dialogues: list[Dialogue], max_length: int | None,
                       generate_turns: int = 40, max_new_tokens: int = 48,
                       with_tools: bool = True) -> tuple[dict, list, list[str]]:
    """All chat metrics for one model; returns (metrics, samples, replies). On tool data,
    ``with_tools`` False scores a model trained without tools (see ``chat_tools``)."""
    if dialogues_use_tools(dialogues):
        return evaluate_tool_predictor(predictor, dialogues, max_length, generate_turns,
                                       max_new_tokens, with_tools)
    started = time.perf_counter()
    metrics = perplexity_metrics(predictor.model, predictor.tokenizer, dialogues, max_length)
    metrics["perplexity_seconds"] = round(time.perf_counter() - started, 2)
    samples = generation_samples(dialogues, generate_turns)
    started = time.perf_counter()
    replies = generate_replies(predictor, samples, max_new_tokens)
    metrics.update(reply_metrics(samples, replies))
    metrics["generation_seconds"] = round(time.perf_counter() - started, 2)
    metrics["max_new_tokens"] = max_new_tokens
    return metrics, samples, replies


def evaluate_tool_predictor(predictor, dialogues: list[Dialogue], max_length: int | None,
                            generate_turns: int, max_new_tokens: int, with_tools: bool = True
                            ) -> tuple[dict, list[ToolTurn], list[str]]:
    """Chat metrics plus ``tool_calls`` / ``grounding`` on tool-calling dialogues."""
    started = time.perf_counter()
    seen = dialogues if with_tools else [without_tools(d) for d in dialogues]
    metrics = perplexity_metrics(predictor.model, predictor.tokenizer, seen, max_length)
    metrics["perplexity_seconds"] = round(time.perf_counter() - started, 2)
    turns = tool_turns(dialogues, generate_turns, with_tools)
    budget = token_budget(predictor.tokenizer, dialogues, max_new_tokens)
    started = time.perf_counter()
    replies = respond_turns(predictor, turns, budget)
    words = [(t, r.content) for t, r in zip(turns, replies) if not t.calls]
    metrics.update(reply_metrics([t for t, _ in words], [text for _, text in words]))
    metrics.update(tool_blocks(turns, replies, with_tools))
    metrics.update(generation_seconds=round(time.perf_counter() - started, 2),
                   generated_turns=len(turns), word_turns=len(words), max_new_tokens=budget,
                   uses_tools=with_tools)
    return metrics, turns, [shown(r) for r in replies]


def replies_for(predictor, samples: list, max_new_tokens: int) -> list[str]:
    """Another model's replies to the same samples (the side-by-side's base column)."""
    if samples and isinstance(samples[0], ToolTurn):
        return [shown(r) for r in respond_turns(predictor, samples, max_new_tokens)]
    return generate_replies(predictor, samples, max_new_tokens)


def run_uses_tools(run: Path) -> bool:
    """Whether the run was trained on tool-calling data (``data.uses_tools`` of its
    summary, recorded by the chat task); runs without the record are taken to use them."""
    import json

    from ..runs.layout import RunDir

    try:
        summary = json.loads(RunDir(Path(run)).summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return (summary.get("data") or {}).get("uses_tools") is not False


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>") or " "


def _shown_message(message: dict) -> str:
    """A context message as text: its words, then its calls in the built-in form."""
    calls = message_calls(message) if message["role"] == "assistant" else []
    words = [message["content"]] if message["content"] else []
    return "\n".join(words + ([call_text(calls)] if calls else []))


def write_side_by_side(path: Path, samples: list[TurnSample], columns: dict[str, list[str]]
                       ) -> Path:
    """A markdown table: context, reference and one column per model's reply."""
    lines = ["| # | context | reference | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for i, sample in enumerate(samples):
        context = "<br>".join(f"**{m['role']}**: {_cell(_shown_message(m))}"
                              for m in sample.context if m["role"] != "system")
        replies = " | ".join(_cell(column[i]) for column in columns.values())
        lines.append(f"| {i + 1} | {context} | {_cell(sample.reference)} | {replies} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def evaluate_run_on(run: Path, data: str, output: Path | None, base: bool,
                    generate_turns: int, max_new_tokens: int, policy=None,
                    documents: bool = False, tools: str | None = None) -> dict:
    """``dialogtune eval`` for causal-LM runs: metrics JSON + side-by-side markdown.

    ``policy``: what the command line allows (remote code, pickle); default neither.
    ``documents``: the run learned documents, so score perplexity over document blocks (a
    document file, ``.txt``/``.md``, is scored that way for any run). On tool data the run
    (and, with ``base``, its base model) is scored with or without tools as it was trained
    (:func:`run_uses_tools`). ``tools``: a tools file for the dialogues without tools of
    their own; default the run's ``data.tools``."""
    from ..checkpoint import write_json_atomic
    from ..config import read_run_config
    from ..data.formats import read_dialogues
    from ..data.formats.documents import is_document_path
    from ..inference.chat import ChatPredictor
    from ..models.loading import LoadPolicy
    from ..runs.layout import RunDir

    cfg = read_run_config(run)
    policy = (policy or LoadPolicy()).for_run(cfg, run)
    name = "base" if base else "tuned"
    output = Path(output) if output else RunDir(Path(run)).eval.named_metrics(name)
    if documents or is_document_path(data):
        return _evaluate_documents(run, cfg, data, output, base, policy)
    dialogues = read_dialogues(data, cfg.data.format, tools or cfg.data.tools)
    model = (ChatPredictor.load(cfg.model.name, policy) if base
             else ChatPredictor.from_run(run, policy))
    metrics, samples, replies = evaluate_predictor(model, dialogues, cfg.data.max_length,
                                                   generate_turns, max_new_tokens,
                                                   run_uses_tools(run))
    # tool data scores more turns than it shows: the table keeps the first generate_turns
    samples, replies = samples[:max(generate_turns, 0)], replies[:max(generate_turns, 0)]
    columns = {"base reply": replies}
    if not base:
        del model  # one model in memory at a time
        base_model = ChatPredictor.load(cfg.model.name, policy)
        columns = {"base reply": replies_for(base_model, samples, metrics["max_new_tokens"]),
                   "tuned reply": replies}
    side = write_side_by_side(output.with_name(output.stem + "_side_by_side.md"), samples,
                              columns)
    metrics.update(model=name, data=str(data), side_by_side=str(side))
    write_json_atomic(metrics, output)
    return metrics


def _evaluate_documents(run: Path, cfg, data: str, output: Path, base: bool, policy) -> dict:
    """Perplexity over document blocks (continued pre-training runs)."""
    from ..inference.chat_run import load_chat_run
    from ..checkpoint import write_json_atomic
    from ..data.encode.documents import document_blocks
    from ..data.formats import read_documents
    from ..models.lm import load_lm, mean_nll

    if base:
        model, tokenizer, _ = load_lm(cfg.model.name, policy.trust_remote_code,
                                      policy.allow_pickle)
    else:
        model, tokenizer, _, _ = load_chat_run(run, policy=policy)
    blocks = document_blocks(tokenizer, read_documents(data), cfg.data.max_length or 256)
    scores = mean_nll(model, blocks, tokenizer.pad_token_id or 0)
    metrics = {"nll": scores["nll"], "perplexity": scores["perplexity"],
               "tokens": scores["tokens"], "blocks": len(blocks),
               "model": "base" if base else "tuned", "data": str(data)}
    write_json_atomic(metrics, output)
    return metrics
