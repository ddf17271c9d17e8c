"""The peers of benchmarks/tools_decoding.py: each constrained-decoding library behind one
interface, ``setup(tokenizer, vocab, stops)`` once (its view of the tokenizer), then
``compile(schema)`` per schema, giving a logits processor ``(ids, scores) -> scores`` that
follows the tokens chosen so far (the last of ``ids``) and masks what the schema forbids.
Install lines: see tools_decoding.py."""

from __future__ import annotations

import json

import numpy as np


def apply_words(words: np.ndarray, scores, vocab: int) -> None:
    """A 32-bit-word token bitmask applied to (1, vocab) scores (forbidden: -inf)."""
    import torch

    allowed = np.unpackbits(words.view(np.uint8), bitorder="little")[:vocab].view(bool)
    scores[:, :vocab].masked_fill_(~torch.from_numpy(allowed), float("-inf"))


class Llguidance:
    """llguidance: byte trie of the vocabulary in Rust, Earley parser + lazy lexer DFAs."""

    def setup(self, tokenizer, vocab: int, stops: list[int]) -> None:
        import llguidance.hf

        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab, eos_token=stops)
        self.vocab = vocab

    def compile(self, schema: dict):
        import llguidance

        from dialogtune.inference.tool_decoding import JSON_STYLE, CallConstraint

        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            schema, defaults={**JSON_STYLE})
        return CallConstraint(llguidance.LLMatcher(self.tokenizer, grammar), self.vocab)


class FormatEnforcer:
    """lm-format-enforcer: a Python character-level parser walked over a token prefix tree."""

    def setup(self, tokenizer, vocab: int, stops: list[int]) -> None:
        import sys
        import types

        from transformers import tokenization_utils_base

        # 0.11.3 imports transformers.tokenization_utils, gone in transformers 5: a shim
        shim = types.ModuleType("transformers.tokenization_utils")
        shim.PreTrainedTokenizerBase = tokenization_utils_base.PreTrainedTokenizerBase
        sys.modules["transformers.tokenization_utils"] = shim
        from lmformatenforcer.integrations.transformers import (
            build_token_enforcer_tokenizer_data)

        self.data = build_token_enforcer_tokenizer_data(tokenizer, vocab_size=vocab)
        self.vocab = vocab

    def compile(self, schema: dict):
        import torch
        from lmformatenforcer import JsonSchemaParser, TokenEnforcer

        enforcer = TokenEnforcer(self.data, JsonSchemaParser(schema))

        def processor(ids, scores):
            allowed = enforcer.get_allowed_tokens(ids[0].tolist()).allowed_tokens
            keep = torch.full_like(scores, float("-inf"))
            keep[:, allowed] = 0
            return scores + keep

        return processor


class Xgrammar:
    """xgrammar: pushdown automaton with token masks precomputed per grammar (C++)."""

    def setup(self, tokenizer, vocab: int, stops: list[int]) -> None:
        import xgrammar

        self.info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab,
                                                            stop_token_ids=stops)
        self.compiler, self.vocab = xgrammar.GrammarCompiler(self.info), vocab

    def compile(self, schema: dict):
        import xgrammar

        compiled = self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False,
                                                     separators=(", ", ": "))
        matcher, words = xgrammar.GrammarMatcher(compiled), xgrammar.allocate_token_bitmask(
            1, self.vocab)
        seen = {"n": None}

        def processor(ids, scores):
            if seen["n"] is not None:
                matcher.accept_token(int(ids[0, -1]))
            seen["n"] = ids.shape[1]
            matcher.fill_next_token_bitmask(words)
            xgrammar.apply_token_bitmask_inplace(scores, words)  # its C++ CPU kernel
            return scores

        return processor


class OutlinesCore:
    """outlines-core (outlines 1.x's engine): the schema as a regex, an index of allowed
    tokens for every automaton state, built up front (Rust)."""

    def setup(self, tokenizer, vocab: int, stops: list[int]) -> None:
        from outlines_core import Vocabulary

        tokens: dict[str, list[int]] = {}
        for token, index in tokenizer.get_vocab().items():  # as outlines' backend does
            if index not in stops and index < vocab:
                tokens.setdefault(tokenizer.convert_tokens_to_string([token]), []).append(index)
        self.vocabulary, self.vocab = Vocabulary(stops[0], tokens), vocab

    def compile(self, schema: dict):
        from outlines_core import Guide, Index
        from outlines_core.json_schema import build_regex_from_schema

        regex = build_regex_from_schema(json.dumps(schema), " ?")
        guide = Guide(Index(regex, self.vocabulary))
        words, seen = np.zeros((self.vocab + 31) // 32, dtype=np.int32), {"n": None}

        def processor(ids, scores):
            if seen["n"] is not None:
                guide.advance(int(ids[0, -1]), return_tokens=False)
            seen["n"] = ids.shape[1]
            guide.write_mask_into(words.ctypes.data, words.size, 4)
            apply_words(words, scores, self.vocab)
            return scores

        return processor


LIBRARIES = {"llguidance": Llguidance, "lm-format-enforcer": FormatEnforcer,
             "xgrammar": Xgrammar, "outlines-core": OutlinesCore}
