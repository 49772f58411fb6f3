"""What isolates workers on this machine, said once per run and recorded in every report; worker
uids never shared between graders; results logs private."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from grader import reports
from grader.batch import ResultsLog
from grader.catalogue import IDS
from grader.isolation import Uids, detect
from grader.results import ExerciseResult, SubmissionResult
from tests.conftest import skip_unless_sandbox_required


def test_this_machine_sandboxes_workers_or_says_why_not():
    iso = detect()
    if iso.bwrap is None:
        assert iso.missing and "not sandboxed" in iso.missing[0] and "bubblewrap" in iso.missing[0]
    elif os.environ.get("BRACKET_GRADER_REQUIRE_SANDBOX") or not iso.missing:
        assert iso.complete and Path(iso.bwrap).exists()
    else:  # e.g. root with Python under a /root others cannot enter (until .ci/run's chmod)
        assert Path(iso.bwrap).exists() and os.geteuid() == 0 and not iso.own_uid
        assert len(iso.missing) == 1 and "workers run as root" in iso.missing[0] and "chmod o+rx" in iso.missing[0]


def test_without_bubblewrap_the_warning_is_printed_and_recorded(tmp_path):
    """PATH without bwrap: the run says what is not enforced, once, and its JSON report records it."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:/nonexistent"}
    code = ("import sys; from grader.isolation import detect, warning; "
            "print(detect().bwrap); print(warning())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    bwrap, warning = proc.stdout.splitlines()[:2]
    assert bwrap == "None" and warning.startswith("warning: workers are not sandboxed (bubblewrap (bwrap) is not installed)")
    assert "reference solutions" in warning and "apt-get install bubblewrap" in warning
    run = {"isolation": {"bubblewrap": False, "own_uid": False, "not_enforced": [warning[len("warning: "):]]}}
    result = SubmissionResult("a.py", tuple(ExerciseResult(i, "passed", 1.0, 1.0, "ok") for i in IDS))
    assert json.loads(reports.json_text([result], run))["run"]["isolation"]["not_enforced"]
    for text in (reports.item_summary_markdown([result], run), reports.feedback_markdown(result, run),
                 reports.junit_text([result], run), reports.gradescope_json(result, run),
                 reports.github_summary_markdown([result], run)):
        assert "not sandboxed" in text
    annotations = reports.github_annotations([result], run).splitlines()
    assert len(annotations) == 1 and annotations[0].startswith("::warning title=isolation::Not enforced")
    assert reports.github_annotations([result], None) == ""  # everything enforced: nothing to say


def test_worker_uids_are_never_shared_between_graders(tmp_path):
    """Each uid is claimed by a lock held while it is used: two graders (two processes) get
    different ones, and one freed is free again."""
    here = Uids(tmp_path)
    mine = {here.claim() for _ in range(5)}
    code = (f"from pathlib import Path; from grader.isolation import Uids; u = Uids(Path({str(tmp_path)!r})); "
            "print(' '.join(str(u.claim()) for _ in range(5)))")
    theirs = set(map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                         timeout=60).stdout.split()))
    assert len(mine) == 5 and len(theirs) == 5 and not mine & theirs
    other = Uids(tmp_path)
    assert not {other.claim() for _ in range(3)} & mine
    uid = mine.pop()
    here.release(uid)
    assert Uids(tmp_path).claim() == uid  # the first free one again (the others before it are held)


def test_the_results_log_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        log = ResultsLog(tmp_path / "log.jsonl")
        log.append("k", SubmissionResult("a.py", ()))
    finally:
        os.umask(old)
    assert (tmp_path / "log.jsonl").stat().st_mode & 0o777 == 0o600


def test_the_sandbox_shows_no_answers_and_no_other_process(tmp_path):
    """A worker's view: of the project only the files on the allow-list (no reference solutions, no
    bytecode, no grader examples or trusted code), only its own processes, no /root cache, one
    writable folder."""
    from grader.isolation import PROJECT_ROOT, bwrap_command, worker_files

    if detect().bwrap is None:
        skip_unless_sandbox_required("bubblewrap is not available here")

    folder = tmp_path / "mine"
    folder.mkdir()
    probe = ("import os, glob, reference, grader\n"
             "seen = sorted(os.path.join(d, f) for p in ('grader', 'reference') for d, _, fs in "
             f"os.walk(os.path.join({str(PROJECT_ROOT)!r}, p)) for f in fs)\n"
             "print(seen == " + repr(sorted(str(p) for p in worker_files())) + " or seen)\n"
             "print(os.path.exists(os.path.join(os.path.dirname(grader.__file__), 'examples')))\n"
             "print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
             "print(os.path.exists(os.path.expanduser('~root/.cache')))\n"
             "open('written', 'w').write('x')\n"
             "try:\n    open('/tmp/../usr/evil', 'w')\nexcept OSError as e:\n    print('refused')\n"
             "left = []\n"
             "for d in ('/', '/dev', '/home', os.path.dirname(grader.__file__), '/tmp', '/dev/shm'):\n"
             "    try:\n        open(os.path.join(d, 'left'), 'w').close(); left.append(d)\n"
             "    except OSError:\n        pass\n"
             "print(left)\n")
    cmd = bwrap_command(detect().bwrap, [folder], []) + [sys.executable, "-c", probe]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder, timeout=120,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stderr
    assert lines[0] == "True" and lines[1] == "False" and lines[2] in ("['1']", "['1', '2']") and lines[3] == "False"
    assert lines[4] == "refused" and (folder / "written").read_text() == "x"
    # besides its own folder, only the two that a warm worker empties between submissions
    assert lines[5] == "['/tmp', '/dev/shm']"


def test_between_submissions_a_warm_worker_empties_its_tmp_but_never_what_is_mounted_there(tmp_path):
    """The slot's folder and the public files are bound into the sandbox's /tmp: emptying /tmp for
    the next submission must remove what a child left there, nested or not, and nothing of theirs."""
    from grader.isolation import bwrap_command

    if detect().bwrap is None:
        skip_unless_sandbox_required("bubblewrap is not available here")
    slot = tmp_path / "slot"
    (slot / "run").mkdir(parents=True)
    (slot / "run" / "submission.py").write_text("x")
    code = ("import os\n"
            "os.makedirs('/tmp/left/' + '/'.join(['deep'] * 50))\n"
            "open('/tmp/left.txt', 'w').close(); open('/dev/shm/left', 'w').close()\n"
            "from grader.worker.warm_worker import _empty\n"
            "_empty('/tmp'); _empty('/dev/shm')\n"
            f"print(os.path.exists('/tmp/left'), os.path.exists('/tmp/left.txt'), os.listdir('/dev/shm'),\n"
            f"      os.listdir({str(slot)!r}))\n")
    cmd = bwrap_command(detect().bwrap, [slot], []) + [sys.executable, "-c", code]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=slot, timeout=120,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False", "[]", "['run']"]
    assert (slot / "run" / "submission.py").read_text() == "x"


def test_workers_that_run_as_root_are_said_to_escape_the_process_limit(monkeypatch):
    """Started as root over a Python installation others cannot read, workers run as uid 0, for
    which the kernel does not apply RLIMIT_NPROC: the run's warning says so (and the run is not
    reported as fully isolated)."""
    from grader import isolation

    monkeypatch.setattr(isolation.os, "geteuid", lambda: 0)
    monkeypatch.setattr(isolation, "python_readable_by_others", lambda: False)
    isolation.detect.cache_clear()
    try:
        iso = isolation.detect()
        assert not iso.own_uid and not iso.complete
        assert any("uid 0" in m and "RLIMIT_NPROC" in m for m in iso.missing), iso.missing
        assert "process limit" in isolation.warning()
    finally:
        isolation.detect.cache_clear()
