"""Plain test helpers (data writers, constants, tiny model builders, paths), importable from
this one module: ``from helpers import write_intent_csv``. Fixtures are registered in
``tests/conftest.py`` and never imported."""

from .chat import DIALOGUES, ZEPHYR_TEMPLATE, build_model_folder, build_tokenizer, write_jsonl
from .intent import INTENT_EXAMPLES, WORDS, Interrupt, write_intent_csv
from .nlu import (ACCOUNTS, AMOUNTS, FAST, PEOPLE, TEMPLATES, fill, nlu_records, tiny_nlu_bert,
                  tiny_nlu_run)
from .paths import EXAMPLES, ROOT, SRC
from .serve import (CHAT_TEMPLATE, SlowChat, assert_generation_stopped, db_rows, free_port,
                    generation_threads, served_chat, slow_chat_predictor, sse_events, tiny_chat_model,
                    tiny_intent_run, wait_healthy, wait_until)
from .tools import TOOLS, ToolChat, get_balance, run_tool

__all__ = ["ACCOUNTS", "AMOUNTS", "CHAT_TEMPLATE", "DIALOGUES", "EXAMPLES", "FAST", "INTENT_EXAMPLES",
           "PEOPLE", "ROOT", "SRC", "TEMPLATES", "TOOLS", "WORDS", "ZEPHYR_TEMPLATE", "Interrupt", "SlowChat", "ToolChat",
           "assert_generation_stopped", "build_model_folder", "build_tokenizer", "db_rows", "fill",
           "free_port", "get_balance", "run_tool", "generation_threads", "served_chat", "nlu_records", "slow_chat_predictor", "sse_events",
           "tiny_chat_model", "tiny_intent_run", "tiny_nlu_bert", "tiny_nlu_run", "wait_healthy", "wait_until",
           "write_intent_csv", "write_jsonl"]
