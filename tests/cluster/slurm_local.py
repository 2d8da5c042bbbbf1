"""A throw-away single-node Slurm on localhost, for the cluster tests (docs/workflow.md, "Running on a cluster").

    python tests/cluster/slurm_local.py -- snakemake --profile workflow/profiles/slurm --config profile=smoke

installs Debian's slurm-wlm if it is missing (root and apt-get), writes /etc/slurm/slurm.conf,
starts slurmctld and slurmd in the foreground (-D) as children of this process, runs the command,
then cancels every job left and stops both daemons by their recorded PIDs, also when the command
fails (its exit status passes through). Nothing is ever stopped by name.

Facts it relies on (../shared/reference/workflow.md §3):
- the config has to be at /etc/slurm/slurm.conf: snakemake-executor-plugin-slurm-jobstep strips
  every SLURM_* variable, SLURM_CONF included, before its nested srun;
- MinJobAge must be large: without slurmdbd the plugin sees a job's state only through squeue,
  which forgets a finished job after MinJobAge seconds;
- DefMemPerCPU, or a job without --mem takes the whole node and jobs run one at a time;
- CPUs and RealMemory come from `slurmd -C` (a RealMemory above the real one drains the node).

Authentication is auth/none + cred/none (Debian's Slurm 22.05 ships both plugins), so no munged
is needed: the cluster listens on 127.0.0.1 only and lives for one test.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# uvhmr throw-away test cluster (tests/cluster/slurm_local.py); removed when it stops"
DAEMONS = ("/usr/sbin/slurmctld", "/usr/sbin/slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "srun")


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be installed or started here (the tests skip with this message)."""


def _have_slurm() -> bool:
    return all(Path(d).is_file() for d in DAEMONS) and all(shutil.which(c) for c in CLIENTS)


def ensure_installed(log=print) -> None:
    """Install Debian's slurm-wlm (slurmctld, slurmd, the clients) if missing: about 10 s."""
    if _have_slurm():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SlurmUnavailable("slurm-wlm is not installed and this is not root on Debian (apt-get install slurm-wlm)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    t = time.monotonic()
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed: {(r.stdout + r.stderr)[-1500:]}")
    if not _have_slurm():
        raise SlurmUnavailable("apt-get installed slurm-wlm but its programs are missing")
    log(f"slurm_local: installed slurm-wlm in {time.monotonic() - t:.1f} s")


def _alive(pid: int, name: str = "") -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return not name


def _in_use(conf_text: str) -> bool:
    """Whether the test cluster a left-over config describes is still running (its owner or its
    slurmctld alive): then another test run owns /etc/slurm/slurm.conf."""
    owner = re.search(r"^# owner pid (\d+)$", conf_text, re.M)
    if owner and int(owner.group(1)) != os.getpid() and _alive(int(owner.group(1))):
        return True
    pidfile = re.search(r"^SlurmctldPidFile=(.+)$", conf_text, re.M)
    try:
        pid = int(Path(pidfile.group(1).strip()).read_text().split()[0]) if pidfile else 0
    except (OSError, ValueError, IndexError):
        pid = 0
    return pid > 0 and _alive(pid, "slurmctld")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> tuple[int, int]:
    """(CPUs, RealMemory MB) as slurmd itself measures them."""
    out = subprocess.run(["/usr/sbin/slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
    return int(fields["CPUs"]), int(fields["RealMemory"])


def _die_with_parent():
    """preexec_fn: the daemon gets SIGTERM if this process dies without stopping it (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except OSError:
        pass


def client_env(env: dict | None = None) -> dict:
    """An environment for Slurm clients and Snakemake: no SLURM_* from an enclosing job, and no
    SLURM_CONF pointing anywhere else than /etc/slurm/slurm.conf."""
    env = dict(os.environ if env is None else env)
    for k in [k for k in env if k.startswith("SLURM_")]:
        del env[k]
    return env


class LocalSlurm:
    """`with LocalSlurm() as cluster:` a one-node cluster on 127.0.0.1; stopped on exit."""

    def __init__(self, log=print, min_job_age: int = 600, cpus: int | None = None):
        """cpus: the node's CPUs (default: the machine's, from `slurmd -C`); more than the machine
        has oversubscribes it (SlurmdParameters=config_overrides), so more jobs run at once."""
        self.log = log
        self.min_job_age = min_job_age
        self.cpus = cpus
        self.mem_mb = 0
        self.dir: Path | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.node = socket.gethostname().split(".")[0]
        self.wrote_conf = False

    # ------------------------------------------------------------------ start
    def conf_text(self, cpus: int, mem_mb: int, real_cpus: int) -> str:
        d = self.dir
        return "\n".join([
            MARKER,
            f"# owner pid {os.getpid()}",
            "ClusterName=uvhmrtest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "AuthType=auth/none",
            "CredType=cred/none",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "ReturnToService=2",
            f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/slurmctld.pid",
            f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmctldLogFile={d}/slurmctld.log",
            f"SlurmdLogFile={d}/slurmd.log",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "DefMemPerCPU=1000",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            f"MinJobAge={self.min_job_age}",
            "InactiveLimit=0",
            "KillWait=5",
            "Waittime=0",
            *(["SlurmdParameters=config_overrides"] if cpus > real_cpus else []),
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    def start(self, timeout: float = 60.0) -> "LocalSlurm":
        ensure_installed(self.log)
        if CONF.exists():
            text = CONF.read_text(errors="replace")
            if MARKER not in text:
                raise SlurmUnavailable(f"{CONF} exists and is not ours: this machine has a Slurm; not touching it")
            if _in_use(text):
                raise SlurmUnavailable(f"another throw-away cluster is running on this machine ({CONF})")
        t0 = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix="uvhmr-slurm-"))
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir()
        real_cpus, mem = _node_hardware()
        cpus = self.cpus = self.cpus or real_cpus
        self.mem_mb = mem
        CONF.parent.mkdir(parents=True, exist_ok=True)
        CONF.write_text(self.conf_text(cpus, mem, real_cpus))
        self.wrote_conf = True
        env = client_env()
        try:
            for name, cmd in (("slurmctld", ["/usr/sbin/slurmctld", "-D", "-c", "-f", str(CONF)]),
                              ("slurmd", ["/usr/sbin/slurmd", "-D", "-N", self.node, "-f", str(CONF)])):
                out = open(self.dir / f"{name}.out", "wb")
                self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                    env=env, preexec_fn=_die_with_parent)
                out.close()
            while True:
                for name, p in self.procs.items():
                    if p.poll() is not None:
                        raise SlurmUnavailable(f"{name} exited with {p.returncode}:\n{self.tail(name)}")
                r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env)
                if r.returncode == 0 and r.stdout.strip() == "idle":
                    break
                if time.monotonic() - t0 > timeout:
                    raise SlurmUnavailable(f"the node is not idle after {timeout:.0f} s (sinfo: {r.stdout.strip()!r} "
                                           f"{r.stderr.strip()!r}):\n{self.tail('slurmctld')}\n{self.tail('slurmd')}")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        self.log(f"slurm_local: node {self.node} ({cpus} CPUs, {mem} MB) idle after {time.monotonic() - t0:.1f} s; "
                 f"pids {', '.join(f'{n}={p.pid}' for n, p in self.procs.items())}")
        return self

    def tail(self, name: str, n: int = 3000) -> str:
        text = ""
        for suffix in (".log", ".out"):
            p = self.dir / f"{name}{suffix}" if self.dir else None
            if p and p.exists():
                text += p.read_text(errors="replace")[-n:]
        return f"--- {name} ---\n{text}"

    # ------------------------------------------------------------------ use
    def jobs(self) -> list[dict]:
        """Every job slurmctld still knows (finished ones for MinJobAge s): id, name, state, comment."""
        r = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%j|%T|%k"], capture_output=True, text=True,
                           env=client_env())
        keys = ("id", "name", "state", "comment")
        return [dict(zip(keys, l.split("|", 3))) for l in r.stdout.splitlines() if l.strip()]

    def active_jobs(self) -> list[dict]:
        return [j for j in self.jobs() if j["state"] in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED")]

    # ------------------------------------------------------------------ stop
    def stop(self, wait: float = 20.0) -> None:
        """Cancel every job left, then stop the daemons by their PIDs: TERM, then KILL."""
        t0 = time.monotonic()
        env = client_env()
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            ids = [j["id"] for j in self.active_jobs()]
            if ids:
                subprocess.run(["scancel", *ids], capture_output=True, env=env)
                while self.active_jobs() and time.monotonic() - t0 < wait:
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        if self.wrote_conf and CONF.exists() and f"# owner pid {os.getpid()}\n" in CONF.read_text(errors="replace"):
            CONF.unlink()
        self.wrote_conf = False
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.procs:
            self.log(f"slurm_local: stopped in {time.monotonic() - t0:.1f} s")
        self.procs = {}

    def __enter__(self) -> "LocalSlurm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print(__doc__)
        return 2
    with LocalSlurm(log=lambda m: print(m, file=sys.stderr)):
        return subprocess.run(argv, env=client_env()).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
