"""Chinese test material written for these tests: a small joint intent + slot data set
(a bank's transfer, balance and lost-card requests) and a tiny BERT whose vocabulary holds
its characters, the "local multilingual model folder" of the Chinese tests."""

from __future__ import annotations

from pathlib import Path

from .nlu import nlu_records, tiny_nlu_bert

AMOUNTS = ["五百元", "两千元", "一百块", "三十元"]
PEOPLE = ["王伟", "李娜", "张敏", "刘洋"]
ACCOUNTS = ["储蓄卡", "信用卡", "工资卡", "定期账户"]
TEMPLATES = {
    "转账": ["帮我给{recipient}转{amount}", "我要转账{amount}给{recipient}",
             "请转{amount}到{recipient}的账户", "给{recipient}打{amount}，谢谢"],
    "查余额": ["我的{account}还有多少钱", "帮我查一下{account}余额",
               "{account}里剩多少？", "请问{account}的余额是多少"],
    "挂失": ["我的{account}丢了，请帮我挂失", "{account}被偷了怎么办",
             "快帮我冻结{account}", "{account}找不到了，要挂失"],
}
SLOT_NAMES = {"amount": "金额", "recipient": "收款人", "account": "账户"}


def chinese_nlu_records() -> list[dict]:
    """48 records: 3 intents x 4 templates x 4 fillings, slot names in Chinese."""
    records = nlu_records(TEMPLATES, AMOUNTS, PEOPLE, ACCOUNTS)
    for record in records:
        for slot in record["slots"]:
            slot["slot"] = SLOT_NAMES[slot["slot"]]
    return records


def tiny_cjk_bert(folder: Path) -> str:
    """A 2-layer BERT whose WordPiece vocabulary holds every character of the data set
    (BERT's basic tokenizer splits CJK text into single characters)."""
    characters = sorted({ch for r in chinese_nlu_records() for ch in r["text"]} - {" "})
    return tiny_nlu_bert(folder, characters)
