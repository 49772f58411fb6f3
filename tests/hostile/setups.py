"""The three ways a grader is started, for the red-team suite: as root (CI, a container), as an
ordinary user (an instructor's laptop, a university server), and as root over a checkout another
user owns (a GitHub runner grading under sudo). Each runs the real command line; the two that are
not "root as is" grade from a copy of the grader's code owned by another uid (the virtual
environment is shared, read-only), as a real installation would be.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

SETUPS = ("root", "ordinary user", "root over another user's checkout")
USER, OWNER = 62_500, 62_600  # uids with no account: nothing of theirs exists on the machine


@dataclass
class Runner:
    setup: str
    home: Path  # the grader's home and cache
    checkout: Path  # the grader's code it runs

    def argv(self, *args: str) -> list[str]:
        cli = [sys.executable, "-m", "grader.cli", *args]
        if self.setup == "ordinary user":
            return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", *cli]
        return cli

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
        return {**keep, "HOME": str(self.home), "BRACKET_GRADER_CACHE": str(self.home / "cache"),
                "PYTHONPATH": str(self.checkout), "TMPDIR": "/tmp"}

    @property
    def uid(self) -> int:
        """The uid the grader runs as."""
        return USER if self.setup == "ordinary user" else os.getuid()

    def code(self) -> list[Path]:
        return [self.checkout / "grader", self.checkout / "reference"]

    def run(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        # SIGINT as from a terminal: pytest-xdist's workers (and a shell's background jobs) ignore
        # it, and the grader and its warm workers would inherit that, so that an attack that sends
        # it to a warm worker would test nothing
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout, env=self.env(),
                              cwd=self.home, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def unavailable(setup: str) -> str:
    """Why this machine cannot provide the setup ("" when it can)."""
    if setup == "root":
        return "" if os.geteuid() == 0 else "the tests do not run as root"
    if os.geteuid() != 0:
        return "switching to another user needs root"
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    for path in (Path(sys.executable), Path(sys.executable).resolve()):
        for parent in [*reversed(path.parents)]:
            if not parent.stat().st_mode & 0o001:
                return f"Python lives under {parent}, which other users cannot enter (.ci/run makes it so)"
    return ""


def require(setup: str) -> None:
    """Skip (fail, where .ci/run requires the sandbox) when this machine cannot provide the setup
    or has no bubblewrap: without it the isolation attacks would succeed, as the grader's warning
    says."""
    from grader.isolation import detect
    from tests.conftest import skip_unless_sandbox_required

    why = unavailable(setup)
    if why:
        skip_unless_sandbox_required(f"setup {setup!r} is not available here: {why}")
    if not detect().bwrap:
        skip_unless_sandbox_required(f"bubblewrap is not available here ({detect().missing[0][:120]}): the isolation "
                                     "attacks would succeed, as the grader's warning says; .ci/run installs it")


def make_runner(setup: str, folder: Path) -> Runner:
    """A home and (but for plain root) a copy of the grader's code owned by the setup's user. The
    home's reference cache starts as a copy of the test run's (the reference's answers do not
    depend on who computes them: each set-up does not compute them again)."""
    home = folder / "home"
    home.mkdir(parents=True)
    shared = os.environ.get("BRACKET_GRADER_CACHE")
    if shared and Path(shared).is_dir():
        shutil.copytree(shared, home / "cache", ignore=shutil.ignore_patterns(".*"))
    if setup == "root":
        return Runner(setup, home, ROOT)
    owner = USER if setup == "ordinary user" else OWNER
    checkout = folder / "checkout"
    for package in ("grader", "reference", "ci"):
        shutil.copytree(ROOT / package, checkout / package, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [folder, home, checkout, *checkout.rglob("*"), *home.rglob("*")]:
        os.lchown(path, owner, owner)
    os.chmod(folder, 0o755)
    if setup == "root over another user's checkout":  # the grader (root) still needs a home of its own
        os.lchown(home, 0, 0)
    return Runner(setup, home, checkout)


def listing(*folders: Path) -> dict[str, tuple]:
    """Every path under the folders with its owner, mode and size: what "nothing changed" compares.
    (Bytecode caches are the grader's own Python writing them, not a worker.)"""
    out = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in dirs + files:
                path = os.path.join(root, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                out[path] = (st.st_uid, st.st_mode, st.st_size if not os.path.isdir(path) else 0)
    return out
