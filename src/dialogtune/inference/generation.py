"""Token-by-token decoding for peft prompt-learning models (prompt, prefix and p-tuning).

peft's ``generate`` for these methods does not match their training forward under
transformers 5.x caches: prefix-tuning's learned keys/values are dropped once ``generate``
builds its own cache (replies equal the base model's), and prompt / p-tuning drift after
the first token. This loop calls the peft model once on the prompt (so peft prepends its
virtual tokens or key/value prefix exactly as in training), then feeds one token at a time
to the wrapped base model with the returned cache. Tests check it against uncached
argmax decoding of the training forward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def is_prompt_learning(model: nn.Module) -> bool:
    config = getattr(model, "active_peft_config", None)
    return bool(config is not None and getattr(config, "is_prompt_learning", False))


def _next_token(logits: torch.Tensor, temperature: float, top_p: float,
                generator: torch.Generator | None) -> int:
    """Greedy when ``temperature`` is 0; otherwise nucleus sampling."""
    if not temperature or temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(0) - sorted_probs > top_p
        sorted_probs[outside] = 0.0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))


@torch.no_grad()
def decode(model: nn.Module, input_ids: torch.Tensor, max_new_tokens: int,
           stop_ids: list[int], temperature: float = 0.0, top_p: float = 1.0,
           streamer=None, seed: int | None = None,
           halt: Callable[[], bool] | None = None,
           processor: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
           ) -> list[int]:
    """Generated token ids (stop token excluded) for a batch of one prompt.

    ``halt`` is asked after every token, like a ``transformers`` stopping criterion: when it
    answers True (client gone, deadline passed) decoding ends with what it has.
    ``processor`` rewrites each step's logits like a ``transformers`` logits processor
    (``(ids so far, (1, vocab) scores) -> scores``), e.g. the tool-call grammar.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if streamer is not None:
        streamer.put(input_ids)  # as generate() does: a skip_prompt streamer drops it
    base = model.get_base_model()
    out = model(input_ids=input_ids, use_cache=True)
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    generated: list[int] = []
    for _ in range(max_new_tokens):
        logits = out.logits[0, -1]
        if processor is not None:
            seen = torch.cat([input_ids, input_ids.new_tensor([generated])], 1)
            logits = processor(seen, logits[None])[0]
        token = _next_token(logits, temperature, top_p, generator)
        if token in stop_ids:
            break
        generated.append(token)
        if streamer is not None:
            streamer.put(torch.tensor([token]))
        if halt is not None and halt():
            break
        out = base(input_ids=input_ids.new_tensor([[token]]), cache=cache, use_cache=True)
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    if streamer is not None:
        streamer.end()
    return generated
