"""A single-node Slurm cluster in a temporary folder, for the test that grades a class through the
shipped Slurm recipe: munged on its own socket, slurmctld and slurmd on this machine's two CPUs,
everything (state, spool, logs, pid files) in the folder. Debian's `slurm-wlm` and `munge`
(scripts/system-packages.sh installs them where it can); root only, as slurmd must be."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")


def missing() -> str:
    """Why no cluster can start here ("" where one can)."""
    if os.geteuid() != 0:
        return "a Slurm cluster's slurmd runs as root, and this is not root"
    absent = [d for d in DAEMONS if not shutil.which(d)]
    if absent:
        return f"Slurm is not installed ({', '.join(absent)} not found; scripts/system-packages.sh installs " \
               "slurm-wlm and munge where apt-get can)"
    if not Path("/etc/munge/munge.key").is_file():
        return "munge has no key (/etc/munge/munge.key)"
    return ""


CONF = """\
ClusterName=bracket
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerParameters=defer
SlurmctldParameters=enable_configless
InactiveLimit=0
KillWait=5
MinJobAge=600
NodeName={host} CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, folder: Path, cpus: int = 2, memory_mib: int = 20000):
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        host = socket.gethostname().split(".")[0]
        for sub in ("state", "spool"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self.conf = folder / "slurm.conf"
        self.conf.write_text(CONF.format(host=host, folder=folder, cpus=cpus, memory=memory_mib,
                                         ctld_port=_free_port(), d_port=_free_port()))
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> "Cluster":
        """The three daemons, each waited for; what started is stopped again if one does not come up."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> "Cluster":
        f = self.folder
        subprocess.run(["munged", "--force", f"--socket={f}/munge.socket", f"--pid-file={f}/munged.pid",
                        f"--log-file={f}/munged.log", f"--seed-file={f}/munged.seed"], check=True, env=self.env)
        self._wait(lambda: (f / "munge.socket").exists(), "munged")
        self.procs.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(self.conf)], env=self.env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._wait(lambda: self.run("scontrol", "ping").returncode == 0 and "UP" in self.run("scontrol", "ping").stdout,
                   "slurmctld")
        self.procs.append(subprocess.Popen(["slurmd", "-D", "-f", str(self.conf)], env=self.env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._wait(lambda: "idle" in self.run("sinfo", "-h", "-o", "%t").stdout, "slurmd (node idle)")
        return self

    def run(self, *cmd: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True, env={**self.env, **kw.pop("env", {})},
                              timeout=60, **kw)

    def _wait(self, ready, what: str, seconds: float = 60) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                if ready():
                    return
            except (OSError, subprocess.SubprocessError):
                pass
            time.sleep(0.5)
        logs = "".join(f"\n--- {p.name}\n{p.read_text()[-1500:]}" for p in self.folder.glob("*.log"))
        raise RuntimeError(f"{what} did not come up in {seconds:g} s{logs}")

    def state(self, job: str) -> set[str]:
        """The states of a job's tasks still known to slurmctld."""
        out = self.run("squeue", "-h", "-j", job, "-o", "%T").stdout.split()
        if out:
            return set(out)
        shown = self.run("scontrol", "show", "job", job).stdout
        return {w.split("=", 1)[1] for w in shown.split() if w.startswith("JobState=")} or {"GONE"}

    def wait_for(self, job: str, seconds: float = 900) -> set[str]:
        """Until none of the job's tasks is pending or running: their final states."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            states = self.state(job)
            if not states & {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
                             "REQUEUE_FED", "RESIZING", "SUSPENDED"}:
                return states
            time.sleep(2)
        raise RuntimeError(f"job {job} still {self.state(job)} after {seconds:g} s")

    def stop(self) -> None:
        """Every daemon and job step of this cluster ends (slurmd's steps too: none outlives the test)."""
        self.run("scancel", "--full", "--quiet", "-u", "root") if self.procs else None
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        pid = self.folder / "munged.pid"
        if pid.exists():
            try:
                os.kill(int(pid.read_text().strip()), 15)
            except (ValueError, OSError):
                pass
