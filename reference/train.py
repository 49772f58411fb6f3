"""Train our bracket classifier (the course architecture) on our data, on the CPU, seeded.

`python -m reference.train` trains, evaluates by length on held-out examples, and writes
`reference/assets/brackets_model.safetensors` plus `manifest.json` (sha256, settings, accuracy).
Training uses examples 10,000 onwards of the data file plus fresh strings from the generator
(another seed); examples 0-9,999 (which include students' `data`, the first 5,000) are held out.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch as t
import torch.nn.functional as F

from reference.brackets import SimpleTokenizer
from reference.datagen import P_ELEVATION, P_SWAP, generate
from reference.model import ASSETS, DEFAULT_WEIGHTS, build_model, load_data_tuples, predict_balanced, read_state_dict

HELD_OUT = 10_000
BUCKETS = ((2, 8), (10, 16), (18, 24), (26, 32), (34, 40))


def accuracy_by_length(model, tuples) -> dict[int, dict]:
    preds = predict_balanced(model, [s for s, _ in tuples])
    by_len: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for (s, b), p in zip(tuples, preds.tolist()):
        by_len[len(s)][0] += int(p == b)
        by_len[len(s)][1] += 1
    return {n: {"correct": c, "total": tot, "accuracy": c / tot} for n, (c, tot) in sorted(by_len.items())}


def train(steps: int, batch_size: int, lr: float, seed: int, fresh: int, init: Path | None = None,
          data: Path | None = None, p_elevation: float = P_ELEVATION, p_swap: float = P_SWAP) -> tuple:
    t.manual_seed(seed)
    random.seed(seed)
    tuples = load_data_tuples(data)
    train_tuples = tuples[HELD_OUT:] + generate(fresh, seed + 1, p_elevation, p_swap)
    tokenizer = SimpleTokenizer("()")
    # Batches are drawn from one bucket of lengths at a time (buckets equally likely): little
    # compute is spent on padding, the long strings (where the errors are) get their share of the
    # steps, and each batch still mixes lengths, which keeps the gradients steady.
    by_length: dict[int, tuple[t.Tensor, t.Tensor]] = {}
    for bucket in BUCKETS:
        group = [(s, b) for s, b in train_tuples if bucket[0] <= len(s) <= bucket[1]]
        by_length[bucket] = (tokenizer.tokenize([s for s, _ in group]), t.tensor([int(b) for _, b in group]))
    lengths = list(BUCKETS)
    model = build_model(read_state_dict(init) if init else None)
    model.train()
    opt = t.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = t.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    gen = t.Generator().manual_seed(seed)
    t0 = time.time()
    for step in range(steps):
        toks, labels = by_length[lengths[int(t.randint(0, len(lengths), (1,), generator=gen))]]
        idx = t.randint(0, len(toks), (batch_size,), generator=gen)
        logits = model(toks[idx])[:, 0]
        loss = F.cross_entropy(logits, labels[idx])
        opt.zero_grad()
        loss.backward()
        t.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 500 == 0 or step == steps - 1:
            acc = (logits.argmax(-1) == labels[idx]).float().mean().item()
            print(f"step {step:5d} loss {loss.item():.5f} batch acc {acc:.4f} ({time.time() - t0:.0f}s)", flush=True)
        if step % 1000 == 999:
            model.eval()
            probe = tuples[:2000]
            correct = (predict_balanced(model, [s for s, _ in probe]) == t.tensor([b for _, b in probe])).float().mean()
            print(f"  held-out accuracy on 2,000: {correct.item():.4f}", flush=True)
            model.train()
    model.eval()
    return model, tuples[:HELD_OUT], time.time() - t0


def previous_stages(init: Path | None) -> list[dict]:
    """A fine-tuning run records the runs its starting weights came from (their manifest)."""
    if init is None:
        return []
    manifest = init.parent / "manifest.json"
    if not manifest.exists():
        return [{"weights_sha256": hashlib.sha256(init.read_bytes()).hexdigest()}]
    m = json.loads(manifest.read_text())
    return m.get("earlier_stages", []) + [{**m["training"], "weights_sha256": m["sha256"],
                                           "held_out_accuracy": m["held_out_accuracy"]}]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fresh", type=int, default=200_000, help="extra generated training strings")
    p.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tuning)")
    p.add_argument("--data", type=Path, default=None, help="data file (default: the shipped one)")
    p.add_argument("--p-elevation", type=float, default=P_ELEVATION, help="generator setting for fresh strings")
    p.add_argument("--p-swap", type=float, default=P_SWAP, help="generator setting for fresh strings")
    p.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    a = p.parse_args(argv)
    t.set_num_threads(2)
    model, held_out, seconds = train(a.steps, a.batch_size, a.lr, a.seed, a.fresh, a.init, a.data, a.p_elevation, a.p_swap)
    by_len = accuracy_by_length(model, held_out)
    total = sum(v["correct"] for v in by_len.values()) / sum(v["total"] for v in by_len.values())
    first = accuracy_by_length(model, held_out[:5000])
    first_acc = sum(v["correct"] for v in first.values()) / 5000
    print(f"held-out accuracy {total:.5f}; on the first 5,000 (students' data) {first_acc:.5f}")
    print("worst length:", min(by_len.items(), key=lambda kv: kv[1]["accuracy"]))

    from safetensors.torch import save_file

    params = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith((".mask", ".IGNORE"))}
    save_file(params, str(a.out))
    manifest = {
        "weights": a.out.name,
        "sha256": hashlib.sha256(a.out.read_bytes()).hexdigest(),
        "data": "brackets_data.json",
        "data_sha256": hashlib.sha256(Path(a.data or ASSETS / "brackets_data.json").read_bytes()).hexdigest(),
        "training": {**{k: v for k, v in vars(a).items() if k not in ("out", "init", "data")}, "seconds": round(seconds),
                     "torch": t.__version__, "held_out": f"examples 0-{HELD_OUT - 1} of the data file",
                     "command": "python -m reference.train " + " ".join(argv if argv is not None else sys.argv[1:])},
        "earlier_stages": previous_stages(a.init),
        "held_out_accuracy": total,
        "first_5000_accuracy": first_acc,
        "accuracy_by_length": {str(n): v for n, v in by_len.items()},
    }
    (a.out.parent / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {a.out} and manifest.json")


if __name__ == "__main__":
    main()
