"""A class's batch with hostile neighbours: 14 honest and 14 hostile submissions graded through the
command line with two workers, interrupted halfway and resumed (the hostile ones are the attacks that
reach past their own submission: what they hold, leave, start, kill or read; tests/hostile/test_hostile.py
grades every attack). Every honest score equals its score
when graded alone; no submission copies a classmate (through /proc, through the temporary folder, or
by waiting for the next submission and writing into its folder); nothing outside the workers'
folders changes (the grader's code, the class folder, the temporary folder, the home folder).
As root (workers under uids of their own) and as an ordinary user (workers under the grader's
uid): what keeps classmates apart differs between the two. Root over a checkout another user owns
gives its workers what root does; what differs there, the owner of the grader's code, is what the
per-attack suite and the neighbours' suite check in that set-up (tests/hostile/setups.py)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.hostile.cases import BASE, CASES, THIEVES
from tests.hostile.setups import SETUPS, Runner, listing, make_runner, require

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.xdist_group("hostile-batch")]

ITEMS = ("get_post_final_ln_dir", "get_WOV", "embedding")
HOSTILE_NAMES = ["infinite_python_loop", "os_exit_in_item", "output_flood", "fork_bomb", "kill_parent",
                 "detached_child", "huge_allocation", "forged_messages", "read_every_file", "links_then_restart",
                 "swallows_timeouts"]
N_HONEST = 14
HONEST_BODIES = [
    "def get_post_final_ln_dir(model):\n    return model.W_U[:, 0] - model.W_U[:, 1]\n",
    "def get_post_final_ln_dir(model):\n    return model.W_U[:, 1] - model.W_U[:, 0]\n",
    "def get_post_final_ln_dir(model):\n    return (model.W_U @ t.tensor([1.0, -1.0])).double()\n",
    "def get_post_final_ln_dir(model):\n    return model.W_U[:, 0]\n",
]


@pytest.mark.parametrize("setup", SETUPS[:2])
def test_honest_and_hostile_classmates_interrupted_resumed_and_nobody_copies(setup, reference):
    require(setup)
    base = Path(tempfile.mkdtemp(prefix="bracket-batch-"))  # reachable by the workers' uids
    os.chmod(base, 0o755)
    try:
        _batch(base, make_runner(setup, base / "grader"))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _batch(base: Path, runner: Runner) -> None:
    folder, tmp, out, cache = base / "class", base / "tmp", base / "out", base / "cache"
    home = runner.home
    for f in (folder, tmp, out, cache):
        f.mkdir(mode=0o755)
        os.chmod(f, 0o755 if f is folder else 0o777)  # the grader's user writes the reports
    if (home / "cache").is_dir():  # the test run's reference answers (tests/hostile/setups.py)
        shutil.copytree(home / "cache", cache, dirs_exist_ok=True)
    for path in [cache, *cache.rglob("*")]:
        os.lchown(path, runner.uid, runner.uid)  # a cache is its owner's alone (grader.disk_cache)
    by_name = {c.name: c for c in CASES}
    honest = []
    for i in range(N_HONEST):
        body = HONEST_BODIES[i % len(HONEST_BODIES)]
        if i % 5 == 0:  # some get embedding wrong too
            body += "\ndef embedding(model, tokenizer, char):\n    return model.W_E[0]\n"
        path = folder / f"honest_{i:02d}.py"
        path.write_text(BASE + "\nPORT = 9\nCANARY = '/nonexistent'\n" + body)
        honest.append(path)
    hostile = {**{n: by_name[n].code for n in HOSTILE_NAMES}, **THIEVES}
    for name, code in hostile.items():
        (folder / f"hostile_{name}.py").write_text(BASE + "\nPORT = 9\nCANARY = '/nonexistent'\n" + code)
    for path in folder.iterdir():
        os.chmod(path, 0o644)
    assert len(honest) == N_HONEST and len(hostile) == N_HONEST
    env = {**runner.env(), "BRACKET_GRADER_CACHE": str(cache), "TMPDIR": str(tmp)}
    cli = runner.argv
    common = [str(folder), "--only", ",".join(ITEMS), "--workers", "2", "--timeout", "16", "--submission-timeout",
              "200", "--memory", "6", "--quiet", "--json", str(out / "report.json")]
    watched = (folder, *runner.code(), home)
    before, tmp_before = listing(*watched), set(os.listdir(tmp))
    log = out / "report.json.log.jsonl"
    # Ctrl-C as a terminal sends it, whatever this test process inherited (a pytest-xdist worker may
    # run with SIGINT ignored, which a child would keep: Python then never raises KeyboardInterrupt)
    proc = subprocess.Popen(cli(*common), env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None and (not log.exists() or len(log.read_text().splitlines()) < 10):
        time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    done_first = len(log.read_text().splitlines())
    again = subprocess.run(cli(*common, "--resume"), env=env, cwd=home, capture_output=True, text=True, timeout=1800)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming: {done_first} already graded" in again.stderr
    together = {Path(s["path"]).name: s for s in json.loads((out / "report.json").read_text())["submissions"]}
    assert len(together) == 2 * N_HONEST
    alone = subprocess.run(cli(*[str(p) for p in honest], *common[1:-2], "--json", str(out / "alone.json")),
                           env=env, cwd=home, capture_output=True, text=True, timeout=1800)
    assert alone.returncode == 0, alone.stderr[-3000:]
    for sub in json.loads((out / "alone.json").read_text())["submissions"]:
        assert together[Path(sub["path"]).name]["exercises"] == sub["exercises"], Path(sub["path"]).name
    statuses = {name: {e["id"]: e["status"] for e in s["exercises"]} for name, s in together.items()}
    for path in honest:
        got = statuses[path.name]
        assert got["get_WOV"] == "passed", (path.name, together[path.name])
        assert got["embedding"] == ("failed" if int(path.stem[-2:]) % 5 == 0 else "passed"), path.name
    for name in THIEVES:
        assert statuses[f"hostile_{name}.py"]["get_post_final_ln_dir"] != "passed", (name, together[f"hostile_{name}.py"])
    assert listing(*watched) == before  # no file of a classmate, the grader, or the home was touched
    left = set(os.listdir(tmp)) - tmp_before  # the slots are gone; what is left is the grader's own
    own = ("bracket-grader-public-", "bracket-grader-empty-", "bracket-grader-uids", "torchinductor_")
    assert all(n.startswith(own) for n in left), {n: sorted(listing(tmp / n))[:20] for n in left if not n.startswith(own)}
