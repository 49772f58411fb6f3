"""The trusted process's peak memory when submissions push every bound at once, against an honest
class graded the same way in the same run (docs/security.md quotes it).

    .venv/bin/python benchmarks/bench_trusted_memory.py --out benchmarks/last_trusted_memory.json

Two command-line runs, two workers each, on the same items: an honest class (the filled-in
template, four times), then the same class with four attackers among it: two that ask the largest
questions the bounds allow (get_out_by_components on the course's 5,000 strings of 40 brackets,
get_activations at the answer-size bound) while two send results at the message budget (a
message as large as one may be, again and again, for the item being graded). Each run records the
trusted process's peak resident memory (`run.trusted_peak_mib`).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ITEMS = "get_WOV,embedding,get_post_final_ln_dir"
BASE = "import os\nimport torch as t\n\n\ndef get_WOV(model, layer, head):\n    return model.W_V[layer, head] @ model.W_O[layer, head]\n"

LARGEST_QUESTIONS = BASE + '''
import gc
from grader.worker.asking import Asker
_asker = next(o for o in gc.get_objects() if isinstance(o, Asker))
_strs = ["(" * 20 + ")" * 20] * 5000
for _function, _args in [("get_out_by_components", [{"$model": "main"}, {"$data": {"strs": _strs}}]),
                         ("get_activations", [{"$model": "main"}, {"$data": {"strs": _strs}},
                                              ["blocks.0.attn.hook_result"] * 5])]:
    _asker.ask(function=_function, args=_args, kwargs={})


def get_post_final_ln_dir(model):
    return t.zeros(model.cfg.d_model)
'''

LARGEST_MESSAGES = BASE + '''
import gc
_channel = next(o for o in gc.get_objects() if type(o).__name__ == "Channel")


def get_post_final_ln_dir(model):
    line = (b'{"kind":"case","item":"get_post_final_ln_dir","case":"model","ok":true,"value":"'
            + b"x" * (60 << 20) + b'"}\\n')
    for _ in range(8):  # 480 MB: past the run's budget
        view = memoryview(line)
        while view:
            view = view[os.write(_channel._fd, view):]
    return t.zeros(model.cfg.d_model)
'''


def grade(folder: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "grader.cli", str(folder), "--only", ITEMS, "--workers", "2",
                           "--quiet", "--json", str(out)], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    report = json.loads(out.read_text())
    return {"trusted_peak_mib": report["run"]["trusted_peak_mib"], "seconds": report["run"]["seconds"],
            "statuses": {Path(s["path"]).name: {e["id"]: e["status"] for e in s["exercises"]
                                                if e["status"] != "not_autograded"} for s in report["submissions"]}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    from reference.make_template import write_solved

    work = Path(tempfile.mkdtemp(prefix="bench-trusted-"))
    (work / "solved").mkdir()
    write_solved(work / "solved")
    honest = (work / "solved" / "exercises.py").read_text()
    classes = {"honest": work / "honest", "pushed": work / "pushed"}
    for name, folder in classes.items():
        folder.mkdir()
        for i in range(4):
            (folder / f"honest_{i}.py").write_text(honest)
        if name == "pushed":
            for i in range(2):
                (folder / f"questions_{i}.py").write_text(LARGEST_QUESTIONS)
                (folder / f"messages_{i}.py").write_text(LARGEST_MESSAGES)
    results = {name: grade(folder, work / f"{name}.json") for name, folder in classes.items()}
    ratio = results["pushed"]["trusted_peak_mib"] / results["honest"]["trusted_peak_mib"]
    print(f"trusted process, peak resident memory: honest class {results['honest']['trusted_peak_mib']} MiB, "
          f"with every bound pushed {results['pushed']['trusted_peak_mib']} MiB ({ratio:.2f}x)")
    if args.out:
        args.out.write_text(json.dumps({**results, "ratio": round(ratio, 3)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
