"""Intent training under torchrun: two CPU ranks (gloo) train one model and stay in sync."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap

from safetensors.torch import load_file

TIMEOUT_S = 300

SCRIPT = textwrap.dedent('''
    import hashlib, json, sys

    import dialogtune.tasks.intent as intent_run
    from accelerate.state import AcceleratorState
    from dialogtune.checkpoint import trainable_state
    from dialogtune.config import load_config

    data, model, out, strategies = sys.argv[1:5]
    hashes = {}
    real_fit = intent_run.fit

    def fit(model, *args, **kwargs):  # hash the weights each rank ends training with
        result = real_fit(model, *args, **kwargs)
        hashes["final"] = digest(trainable_state(model))
        return result

    def digest(tensors):
        h = hashlib.sha256()
        for name, tensor in sorted(tensors.items()):
            h.update(name.encode())
            h.update(tensor.contiguous().numpy().tobytes())
        return h.hexdigest()

    class Interrupted(Exception):
        pass

    def interrupt_at(step):
        def callback(current):
            if current == step:
                raise Interrupted
        return callback

    intent_run.fit = fit
    # one launch, several runs (startup is the cost); "NAME@K": crash after step K, resume
    for run in strategies.split(","):
        strategy, _, crash_step = run.partition("@")
        name = run.replace("@", "-crash")
        cfg = load_config(None, ["train.batch_size=4", "train.epochs=2", "train.min_steps=0",
                                 "train.save_every_steps=2", f"strategy.name={strategy}"],
                          **{"data.train": data, "model.name": model, "output": f"{out}/{name}"})
        if crash_step:
            try:
                intent_run.train_intent(cfg, callbacks=[interrupt_at(int(crash_step))])
            except Interrupted:
                pass
            summary = intent_run.train_intent(cfg, resume=True)
        else:
            summary = intent_run.train_intent(cfg)
        state = AcceleratorState()
        with open(f"{out}/{name}/rank{state.process_index}.json", "w") as handle:
            json.dump({"sha256": hashes["final"], "num_processes": state.num_processes,
                       "distributed_type": str(state.distributed_type),
                       "backend": state.backend, "steps": summary["steps"]}, handle)
''')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digest_file(path) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(load_file(str(path)).items()):
        h.update(name.encode())
        h.update(tensor.contiguous().numpy().tobytes())
    return h.hexdigest()


STRATEGIES = ("full", "lora")  # both leave a trainable pooler the loss never reaches
# Crash after step 3 and resume from the step-2 checkpoint: every rank must restore its own
# RNG state (dropout draws differ per rank) to end exactly where the unbroken run ends.
CRASHED = "full@3"


def test_two_rank_ddp_training(tiny_bert, intent_csv, tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
               CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
               "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(script),
               str(intent_csv), tiny_bert, str(out), ",".join([*STRATEGIES, CRASHED])]
    proc = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    for strategy in STRATEGIES:
        run = out / strategy
        ranks = [json.loads((run / f"rank{r}.json").read_text()) for r in (0, 1)]
        for rank in ranks:
            assert rank["num_processes"] == 2
            assert rank["distributed_type"] == "DistributedType.MULTI_CPU"
            assert rank["backend"] == "gloo"
        assert ranks[0]["sha256"] == ranks[1]["sha256"], strategy
        assert digest_file(run / "model.safetensors") == ranks[0]["sha256"]
        # each rank trains on half of every epoch: 21 examples -> 6 batches -> 3 steps a rank
        summary = json.loads((run / "run.json").read_text())
        assert summary["train_examples"] == 21 and summary["strategy"] == strategy
        assert ranks[0]["steps"] == ranks[1]["steps"] == summary["steps"] == 2 * 3
        # only the main process writes the log: one evaluation line per epoch
        log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in log if "eval" in r] == [1, 2]
        assert not [p.name for p in run.iterdir() if p.name.startswith(".")]

    resumed = [json.loads((out / "full-crash3" / f"rank{r}.json").read_text()) for r in (0, 1)]
    unbroken = json.loads((out / "full" / "rank0.json").read_text())
    assert [r["sha256"] for r in resumed] == [unbroken["sha256"]] * 2
    assert resumed[0]["steps"] == unbroken["steps"]
