"""Grade the corpus (both models), the bundled example and the red-team cases through the command
line and keep their JSON reports; or compare two such snapshots, ignoring times.

    .venv/bin/python scripts/compare_verdicts.py snapshot OUT_DIR [--only corpus,example,hostile]
    .venv/bin/python scripts/compare_verdicts.py compare BEFORE_DIR AFTER_DIR

A redesign that must change no verdict runs `snapshot` on the commit before it and on its own
checkout (copy this file into the older checkout if it lacks it), then `compare`. Compared per
submission and item: status, score, the likely causes named, the condition a pass was given on
(a correct helper, the course's size, the course's solutions) and, unless --no-feedback, the
feedback text itself with its numbers masked (float32 sums may round otherwise between runs).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
COURSE = ROOT.parent / "shared" / "arena-1.5.1"


def cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bracket-grade {' '.join(args[:3])}... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def snapshot(out: Path, only: set[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="verdicts-"))
    if "example" in only:
        cli("--json", str(out / "example.json"), "--quiet")
    if only & {"corpus", "corpus-ours", "corpus-course"}:
        from tests.corpus.field import ALL
        from tests.corpus.submissions import build
        from tests.corpus.test_corpus import on_model
    if only & {"corpus", "corpus-ours"}:
        build(work / "corpus-ours", ALL)
        cli(str(work / "corpus-ours"), "--json", str(out / "corpus-ours.json"), "--timeout", "20", "--workers", "2",
            "--quiet")
    if only & {"corpus", "corpus-course"}:
        if COURSE.is_dir():
            build(work / "corpus-course", on_model("the course's model"))
            cli(str(work / "corpus-course"), "--json", str(out / "corpus-course.json"), "--timeout", "20", "--workers",
                "2", "--quiet", "--weights", str(COURSE / "brackets_model_state_dict.pt"),
                "--data", str(COURSE / "brackets_data.json"))
    if "hostile" in only:
        from tests.hostile.cases import CASES, HONEST
        from tests.hostile.test_hostile import write_attacks

        items = sorted({c.target for c in CASES} | set(HONEST))
        groups = write_attacks(work / "hostile", 9, work / "canary.txt", ROOT)
        for mode in groups:
            cli(str(work / "hostile" / mode), "--only", ",".join(items), "--mode", mode, "--workers", "2",
                "--timeout", "16", "--submission-timeout", "300", "--memory", "6", "--quiet",
                *(["--statement-timeout", "15"] if mode == "lean" else []), "--json", str(out / f"hostile-{mode}.json"))
    print(f"snapshot in {out}")


NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")
TIMING = ("hangs", "loop", "swallow", "bomb", "leak", "exits_at", "sleep", "waits_for")


def facts(exercise: dict) -> dict:
    """What must not change: status, score, the known mistakes named (by the words each has, in
    either version's feedback), the condition of a pass."""
    from grader.mistakes import MISTAKES

    text = exercise.get("feedback", "")
    conditions = [c for c in ("given a correct", "on the course's", "from the course's solutions") if c in text]
    return {"status": exercise["status"], "score": round(float(exercise["score"]), 4),
            "max_score": float(exercise["max_score"]), "causes": sorted(m.id for m in MISTAKES if m.says in text),
            "conditions": conditions, "feedback": NUMBER.sub("N", text)}


def load(folder: Path) -> dict[str, dict[str, dict]]:
    out = {}
    for report in sorted(folder.glob("*.json")):
        for sub in json.loads(report.read_text())["submissions"]:
            out[f"{report.stem}/{Path(sub['path']).name}"] = {e["id"]: facts(e) for e in sub["exercises"]}
    return out


def compare(before: Path, after: Path, feedback: bool) -> int:
    a, b = load(before), load(after)
    problems = [f"only before: {k}" for k in sorted(set(a) - set(b))] + [f"only after: {k}" for k in sorted(set(b) - set(a))]
    items = 0
    for key in sorted(set(a) & set(b)):
        for item, old in a[key].items():
            new = b[key].get(item)
            items += 1
            fields = [f for f in ("status", "score", "max_score", "causes", "conditions") + (("feedback",) if feedback else ())
                      if new is None or old[f] != new[f]]
            if fields:
                timing = any(t in key for t in TIMING)
                problems.append(f"{'(timing-dependent) ' if timing else ''}{key} {item}: "
                                + "; ".join(f"{f}: {old[f]!r} -> {(new or {}).get(f)!r}" for f in fields))
    print(f"{len(set(a) & set(b))} submissions, {items} item verdicts compared; {len(problems)} differ")
    for p in problems:
        print("  " + p[:600])
    return 1 if problems else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("out", type=Path)
    s.add_argument("--only", default="corpus,example,hostile", help="of corpus (both models), corpus-ours, "
                   "corpus-course, example, hostile")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("--no-feedback", action="store_true", help="compare facts only, not the feedback text")
    args = p.parse_args()
    if args.command == "snapshot":
        os.environ.setdefault("BRACKET_GRADER_CACHE", str(Path(tempfile.gettempdir()) / "verdicts-cache"))
        snapshot(args.out, set(args.only.split(",")))
        return 0
    return compare(args.before, args.after, not args.no_feedback)


if __name__ == "__main__":
    sys.exit(main())
