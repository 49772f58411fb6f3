"""The third red team's attacks (tests/hostile/neighbours.py), each graded alone between two honest
classmates in one slot by the command line of another checkout: which of them that grader
contains, and what broke where it does not. This is how each attack is shown to succeed on the
commit before the work that contains it (the suite asserts that this checkout contains them all):

    .venv/bin/python scripts/red_team_against.py a271d01        # a commit (a temporary worktree)
    .venv/bin/python scripts/red_team_against.py .              # this checkout
    .venv/bin/python scripts/red_team_against.py a271d01 --only storage,message_flood

Runs as the machine's user (root on CI), with this checkout's virtual environment for every
grader. What it observes from outside, so that an older grader's reports need no newer fields:
each item's status and feedback, the honest classmates' items, the trusted process's peak memory
(its VmHWM, read while it runs), control characters in the terminal and in every file written,
and the warm workers started (more than one: a cold start was paid, the attack ended one).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile.neighbours import ATTACKS, ITEMS, Attack, attack_source  # noqa: E402
from grader.engine import vm_hwm_mib  # noqa: E402
from tests.hostile.test_neighbours import TRUSTED_PEAK_MIB, honest_source  # noqa: E402


def warm_workers() -> set[int]:
    """The warm workers' Python processes now on the machine (inside a sandbox or not), not the
    children they fork (which share their command line)."""
    python, parent = set(), {}
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if proc.name.isdigit() and Path(argv[0].decode(errors="replace")).name.startswith("python") \
                and (b"grader.worker.warm_worker" in argv or b"grader.worker.zygote" in argv):  # its older name
            python.add(int(proc.name))
            parent[int(proc.name)] = ppid
    return {pid for pid in python if parent[pid] not in python}


def watch(pid: int, stop: threading.Event, seen: list[int], workers: set[int]) -> None:
    """The grader's peak memory (VmHWM) and every warm worker started while it runs."""
    while not stop.is_set():
        peak = vm_hwm_mib(Path(f"/proc/{pid}/status"))
        if peak is None:  # it has ended
            return
        seen.append(peak)
        workers.update(warm_workers())
        stop.wait(0.2)


def grade(checkout: Path, attack: Attack, folder: Path) -> tuple[dict, str, int, int, Path]:
    subs, out = folder / "class", folder / "out"
    subs.mkdir(parents=True)
    out.mkdir()
    honest = honest_source(folder / "solved")
    name = attack.file_name or attack.name + ".py"
    for cache in [*checkout.glob("grader/**/__pycache__"), *checkout.glob("reference/**/__pycache__")]:
        shutil.rmtree(cache, ignore_errors=True)  # a fresh checkout: Python writes the bytecode as the grader runs
    for file, text in (("00_honest.py", honest), (f"01_{name}", attack_source(attack)), ("02_honest.py", honest)):
        (subs / file).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # Python's default, as users have
    env.update(PYTHONPATH=str(checkout), HOME=str(folder), TMPDIR="/tmp", BRACKET_GRADER_CACHE=str(folder.parent / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "grader.cli", str(subs), "--only", ",".join(ITEMS), "--workers",
                             "1", "--timeout", "60", "--json", str(out / "report.json"), "--feedback-dir",
                             str(out / "feedback"), "--summary", str(out / "summary.md")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=folder)
    stop, seen, workers = threading.Event(), [0], set()
    watcher = threading.Thread(target=watch, args=(proc.pid, stop, seen, workers), daemon=True)
    watcher.start()
    printed, _ = proc.communicate(timeout=3600)
    stop.set()
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    return report, printed, max(seen), len(workers), out


def problems(attack: Attack, report: dict, printed: str, peak: int, started: int, out: Path) -> list[str]:
    """What the attack achieved: empty where the grader contained it."""
    if not report:
        return ["the batch ended without a report: " + printed[-300:].replace("\n", " ")]
    by = {Path(s["path"]).name[:2]: s for s in report["submissions"]}
    found = []
    for key in ("00", "02"):
        lost = [e["id"] for e in by[key]["exercises"] if e["id"] in ITEMS and e["status"] != "passed"]
        if lost:
            found.append(f"honest classmate {key} lost {', '.join(lost)}")
    for e in by["01"]["exercises"]:
        if e["id"] not in ITEMS:
            continue
        allowed = attack.expected.get(e["id"], ("passed",))
        if e["status"] not in allowed or (e["status"] != "passed" and e["score"]):
            found.append(f"{e['id']} {e['status']} ({e['score']:g} points), expected {'/'.join(allowed)}")
        elif attack.says.get(e["id"], "") not in e["feedback"]:
            found.append(f"{e['id']}'s feedback does not say {attack.says[e['id']]!r}")
    if peak > TRUSTED_PEAK_MIB:
        found.append(f"the trusted process grew to {peak} MiB (bound {TRUSTED_PEAK_MIB})")
    if started > 1:
        found.append(f"{started - 1} warm worker(s) started again: the attack ended one, and a cold start was paid")
    escaped = ["the terminal"] if "\x1b" in printed or "\x07" in printed else []
    escaped += [p.name for p in out.rglob("*") if p.is_file() and ("\x1b" in p.name or "\x1b" in p.read_text(errors="replace"))]
    if escaped:
        found.append("control characters reached " + ", ".join(sorted(set(escaped)))[:200])
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("commit", help="a commit to check out, or '.' for this checkout")
    p.add_argument("--only", default="", help="attack names, comma-separated")
    a = p.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # not ignored, as where a shell started us in the background
    attacks = [x for x in ATTACKS if not a.only or x.name in a.only.split(",")]
    base = Path(tempfile.mkdtemp(prefix="red-team-against-"))
    checkout = ROOT
    if a.commit != ".":
        checkout = base / "checkout"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(checkout), a.commit],
                       check=True, capture_output=True)
    label = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True).stdout.strip()
    contained = 0
    try:
        for attack in attacks:
            began = time.monotonic()
            report, printed, peak, started, out = grade(checkout, attack, base / attack.name)
            found = problems(attack, report, printed, peak, started, out)
            contained += not found
            print(f"{label} {attack.name}: {'contained' if not found else 'SUCCEEDED'} "
                  f"({time.monotonic() - began:.0f} s, trusted peak {peak} MiB)", flush=True)
            for line in found:
                print(f"    {line}", flush=True)
            shutil.rmtree(base / attack.name, ignore_errors=True)
    finally:
        if checkout != ROOT:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    print(f"{label}: {contained} of {len(attacks)} attacks contained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
