"""Writes examples/tools.json, tools_train.jsonl and tools_test.jsonl: Lumen Mobile support
chats in which the assistant calls the support desk's backend and answers from its result.

Deterministic (one seeded ``random.Random``): running it again rewrites the same files.
Train and test draw their user wording and their replies from separate template pools, so
the test dialogues are worded differently from everything trained on; values (account ids,
balances, dates, phone numbers, cities, references) are drawn afresh for every dialogue,
and every reply states the values exactly as the tool result gives them.

    python examples/make_tools_examples.py [--train 120] [--test 24]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEM = "You are Lumen Mobile's support assistant. Be brief, friendly and specific."
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
CITIES = ("Dayton", "Tacoma", "Fresno", "Boise", "Akron", "Mesa", "Eugene", "Madison",
          "Spokane", "Toledo", "Reno", "Lansing", "Provo", "Salem", "Tulsa", "Omaha")


def _function(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required}}}


ACCOUNT = {"type": "string", "description": "Account id: LM- and 8 digits"}
PHONE = {"type": "string", "description": "Phone number of the line, e.g. 555-0134"}
TOOLS = [
    _function("get_balance", "Balance and due date of an account", {"account_id": ACCOUNT},
              ["account_id"]),
    _function("get_data_usage", "Mobile data used this billing cycle on a line",
              {"phone_number": PHONE}, ["phone_number"]),
    _function("check_outage", "Whether there is a service outage in a city",
              {"city": {"type": "string"},
               "service": {"type": "string", "enum": ["fiber", "mobile"]}},
              ["city", "service"]),
    _function("block_sim", "Block the SIM of a lost or stolen phone",
              {"phone_number": PHONE, "reason": {"type": "string", "enum": ["lost", "stolen"]}},
              ["phone_number", "reason"]),
]


# -- values and the backend the dialogues pretend to call -----------------------------------

def account_id(rng: random.Random) -> str:
    return f"LM-{rng.randrange(10**7, 10**8)}"


def phone(rng: random.Random) -> str:
    return f"555-01{rng.randrange(100):02d}"


def day(rng: random.Random) -> str:
    return f"{rng.choice(MONTHS)} {rng.randrange(1, 29)}"


def money(rng: random.Random) -> str:
    return "$0.00" if rng.random() < 0.1 else f"${rng.randrange(900, 24000) / 100:.2f}"


def clock(rng: random.Random) -> str:
    return f"{rng.randrange(1, 12)}:{rng.choice(('00', '15', '30', '45'))} {rng.choice('AP')}M"


def result(name: str, args: dict, rng: random.Random) -> dict:
    """What the backend answers: the arguments echoed, then the looked-up values."""
    if name == "get_balance":
        return {**args, "balance": money(rng), "due_date": day(rng)}
    if name == "get_data_usage":
        allowance = rng.choice((5, 10, 15, 20, 50))
        used = f"{rng.randrange(1, allowance * 10) / 10:g} GB"
        return {**args, "used": used, "allowance": f"{allowance} GB", "resets_on": day(rng)}
    if name == "check_outage":
        down = rng.random() < 0.6
        return {**args, "status": "outage" if down else "no outage",
                **({"fix_eta": clock(rng)} if down else {})}
    return {**args, "status": "blocked", "reference": f"BLK-{rng.randrange(10000, 99999)}"}


# -- wording: train and test pools never share a template -----------------------------------
# "ask" templates name every argument; where an argument is an enum the user's words decide
# (keyed by that value). "bare" asks without the argument the assistant must ask for.

SCENES = {
    "get_balance": {"key": "account_id", "make": account_id, "train": {
        "ask": {None: ["What's the balance on account {account_id}?",
                       "how much do i owe on {account_id}",
                       "Can you check my bill? Account number {account_id}.",
                       "I need the balance for {account_id} please",
                       "Hi! What do I owe this month? My account is {account_id}.",
                       "balance for {account_id}?",
                       "When is my payment due and how much is it? Account {account_id}"]},
        "bare": ["What's my balance?", "How much is my bill this month?",
                 "can you tell me what i owe", "When is my next payment due?"],
        "prompt": ["Sure, what's your account number? It starts with LM-.",
                   "I can check that. Which account is it?",
                   "Happy to help. What's the account ID?"],
        "give": ["{account_id}", "It's {account_id}.", "sure, {account_id}",
                 "The account is {account_id}"],
        "reply": ["Account {account_id} has a balance of {balance}, due on {due_date}.",
                  "You owe {balance} on {account_id}; it's due {due_date}.",
                  "The balance on {account_id} is {balance} and the due date is {due_date}.",
                  "{balance} is due on {due_date} for account {account_id}.",
                  "Your current balance is {balance}, payable by {due_date}."]}, "test": {
        "ask": {None: ["Could you look up what I owe on {account_id}?",
                       "what's due on my account {account_id}",
                       "Please tell me the amount owed for account {account_id}."]},
        "bare": ["How much do I have to pay?", "what do i owe you guys"],
        "prompt": ["Of course. Could you give me your account ID?"],
        "give": ["Account ID is {account_id}", "{account_id} is the one"],
        "reply": ["I see {balance} owed on account {account_id}, due {due_date}.",
                  "For {account_id} the amount due is {balance}, by {due_date}."]}},
    "get_data_usage": {"key": "phone_number", "make": phone, "train": {
        "ask": {None: ["How much data have I used on {phone_number}?",
                       "data usage for my line {phone_number}?",
                       "Am I close to my data cap? My number is {phone_number}.",
                       "check how many GB are left on {phone_number}",
                       "How much mobile data is left this month on {phone_number}?"]},
        "bare": ["How much data have I used?", "am i running out of data",
                 "Can you check my data usage?"],
        "prompt": ["Sure. Which phone number should I check?",
                   "I can look that up. What's the number of the line?"],
        "give": ["{phone_number}", "it's {phone_number}", "My number is {phone_number}."],
        "reply": [("Line {phone_number} has used {used} of its {allowance} this cycle; it "
                  "resets on {resets_on}."),
                  ("You've used {used} of {allowance} on {phone_number}. The cycle resets "
                  "{resets_on}."),
                  "{phone_number} is at {used} out of {allowance}, resetting on {resets_on}."]},
        "test": {
        "ask": {None: ["What's my data usage so far on {phone_number}?",
                       "how many gigs have i burned through on {phone_number}"]},
        "bare": ["Have I used a lot of data this month?"],
        "prompt": ["Glad to check. What phone number is it?"],
        "give": ["The line is {phone_number}"],
        "reply": [("So far {phone_number} has used {used} of {allowance}; the count "
                  "restarts on {resets_on}.")]}},
    "check_outage": {"key": "city", "make": lambda rng: rng.choice(CITIES), "train": {
        "ask": {"fiber": ["Is there an internet outage in {city}?",
                          "my fiber is down in {city}, is it just me?",
                          "No internet at home in {city} since this morning. Outage?"],
                "mobile": ["Is the mobile network down in {city}?",
                           "no cell signal in {city} at all, what's going on",
                           "My calls keep dropping in {city}. Is there an outage?"]},
        "bare": {"fiber": ["Is the internet down?", "my home internet stopped working"],
                 "mobile": ["Is there a problem with the cell network?",
                            "my phone shows no bars"]},
        "prompt": ["Sorry about that. Which city are you in?",
                   "Let me check. What city is this in?"],
        "give": ["{city}", "I'm in {city}.", "{city}, near downtown"],
        "reply": {"outage": [("Yes, there's a {service} outage in {city}. Crews expect it "
                             "fixed by {fix_eta}."),
                             ("There is a known {service} outage in {city}; the fix is "
                             "expected by {fix_eta}.")],
                  "no outage": [("I don't see any {service} outage in {city} right now. "
                                "Restarting your device often helps."),
                                ("There's no {service} outage reported in {city} at the "
                                "moment.")]}}, "test": {
        "ask": {"fiber": ["Wifi and fiber both dead here in {city}. Known outage?"],
                "mobile": ["Is mobile service out around {city}?"]},
        "bare": {"fiber": ["Is your internet service having problems?"],
                 "mobile": ["Are your cell towers down?"]},
        "prompt": ["I'll check for you. Which city?"],
        "give": ["It's {city}"],
        "reply": {"outage": [("Our {service} network in {city} has an outage right now, "
                             "with repairs due by {fix_eta}.")],
                  "no outage": ["Our records show no {service} outage in {city}."]}}},
    "block_sim": {"key": "phone_number", "make": phone, "train": {
        "ask": {"lost": ["I lost my phone, please block the SIM for {phone_number}",
                         "left my phone on the bus, number {phone_number}. block it",
                         "I can't find my phone anywhere. Can you block {phone_number}?"],
                "stolen": ["My phone was stolen! The number is {phone_number}.",
                           "someone took my phone, block {phone_number} now",
                           "Please block {phone_number}, my phone got stolen."]},
        "bare": {"lost": ["I lost my phone.", "i think i dropped my phone somewhere"],
                 "stolen": ["My phone was stolen.", "someone stole my phone"]},
        "prompt": ["I'm sorry. What's the phone number so I can block the SIM?",
                   "Let's block it right away. Which number is it?"],
        "give": ["{phone_number}", "It was {phone_number}."],
        "reply": [("Done: the SIM for {phone_number} is blocked. Your reference is "
                  "{reference}."),
                  ("I've blocked the SIM on {phone_number} (reference {reference}). A "
                  "replacement can be picked up in any store."),
                  ("{phone_number} is blocked now. Keep reference {reference} for the "
                  "police or insurance.")]}, "test": {
        "ask": {"lost": ["Misplaced my phone, can you shut off the SIM on {phone_number}?"],
                "stolen": ["Phone got snatched, please block {phone_number}"]},
        "bare": {"lost": ["I have lost my mobile"], "stolen": ["my phone was taken"]},
        "prompt": ["Sorry to hear that. What number should I block?"],
        "give": ["Number is {phone_number}"],
        "reply": ["The SIM on {phone_number} is now blocked, reference {reference}."]}},
}
ENUMS = {"check_outage": "service", "block_sim": "reason"}
SMALL_TALK = {"train": {
    "open": [("Hi there", "Hello! How can I help you today?"),
             ("hello, quick question", "Sure, go ahead!"),
             ("Good morning", "Good morning! What can I do for you?")],
    "close": [("Thanks, that's all.", "You're welcome! Have a great day."),
              ("ok thank you", "Anytime. Is there anything else I can help with?"),
              ("Great, thanks for the help", "Glad I could help!")],
    "alone": [("How do I restart my router?", ("Unplug it, wait 30 seconds and plug it back "
               "in. The lights take about two minutes to settle.")),
              ("Can I keep my number if I switch to you?", ("Yes, you can bring your number. "
               "Start the transfer in the app or at any store."))]}, "test": {
    "open": [("hey", "Hi! What can I help with?")],
    "close": [("cool, thanks a lot", "My pleasure. Take care!")],
    "alone": [("Do you sell phone cases?", ("Yes, our stores carry cases for most "
               "models."))]}}


# -- dialogues ------------------------------------------------------------------------------

def _pick(options, enum_value, rng: random.Random) -> str:
    """A template from a list, or from the list for this enum value."""
    return rng.choice(options[enum_value] if isinstance(options, dict) else options)


def _call(tool: str, args: dict, number: int, rng: random.Random) -> tuple[list[dict], dict]:
    """The assistant's call and the backend's result, as two messages."""
    call_id = f"call_{number}"
    call = {"id": call_id, "type": "function",
            "function": {"name": tool, "arguments": json.dumps(args)}}
    answer = result(tool, args, rng)
    return [{"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "name": tool,
             "content": json.dumps(answer)}], answer


def request(tool: str, split: str, number: int, rng: random.Random) -> list[dict]:
    """One task: the user asks (giving the argument, or not, then after being asked), the
    assistant calls ``tool``, the result comes back and the reply states its values."""
    scene, words = SCENES[tool], SCENES[tool][split]
    enum_value = rng.choice(list(words["ask"]))
    args = {scene["key"]: scene["make"](rng)}
    if tool in ENUMS:
        args[ENUMS[tool]] = enum_value
    if rng.random() < 0.3:
        asked = [_pick(words["bare"], enum_value, rng), rng.choice(words["prompt"]),
                 rng.choice(words["give"])]
    else:
        asked = [_pick(words["ask"], enum_value, rng)]
    turns = [{"role": ("user", "assistant")[i % 2], "content": text.format(**args)}
             for i, text in enumerate(asked)]
    called, answer = _call(tool, args, number, rng)
    reply = _pick(words["reply"], answer.get("status"), rng).format(**answer)
    return turns + called + [{"role": "assistant", "content": reply}]


def _small_talk(kind: str, split: str, rng: random.Random) -> list[dict]:
    user, assistant = rng.choice(SMALL_TALK[split][kind])
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def dialogue(split: str, number: int, rng: random.Random) -> dict:
    """A chat of one task (two in about a third), with no-tool turns before, between or
    after them."""
    messages = [{"role": "system", "content": SYSTEM}]
    if rng.random() < 0.15:
        messages += _small_talk("open", split, rng)
    first = sorted(SCENES)[number % len(SCENES)]  # every tool equally often first
    tools = [first] + ([rng.choice([t for t in sorted(SCENES) if t != first])]
                       if rng.random() < 0.35 else [])
    for i, tool in enumerate(tools, 1):
        if rng.random() < 0.12:
            messages += _small_talk("alone", split, rng)
        messages += request(tool, split, i, rng)
    if rng.random() < 0.35:
        messages += _small_talk("close", split, rng)
    return {"id": f"lt_{number:04d}", "domain": "lumen_support", "tools": TOOLS,
            "messages": messages}


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=120)
    parser.add_argument("--test", type=int, default=24)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    train = [dialogue("train", i, rng) for i in range(1, args.train + 1)]
    test = [dialogue("test", i, rng)
            for i in range(args.train + 1, args.train + args.test + 1)]
    (args.out / "tools.json").write_text(json.dumps(TOOLS, indent=2) + "\n", encoding="utf-8")
    write_jsonl(args.out / "tools_train.jsonl", train)
    write_jsonl(args.out / "tools_test.jsonl", test)
    print(f"wrote {len(train)} train and {len(test)} test dialogues to {args.out}")


if __name__ == "__main__":
    main()
