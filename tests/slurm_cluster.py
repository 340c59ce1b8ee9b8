"""A throw-away single-node SLURM cluster on loopback, for tests and benchmarks.

Usage::

    with slurm_cluster() as cluster:          # installs Debian's packages once if missing
        result = run_workflow(workflow_dir, extra_args=["--cores", "2"])
        assert result.returncode == 0, result.output

or, in a test module, ``from slurm_cluster import slurm_cluster_fixture`` and take a ``slurm``
argument (a module-scoped pytest fixture that skips when SLURM cannot be installed, and unless the
user opted in with ``VAMOH_SLURM_TESTS=1`` or ``pytest --slurm``: it changes the machine).

What it does, and why each step is there:

- ``slurmctld slurmd slurm-client munge`` come from apt when a binary is missing (root only); when they
  cannot be installed the fixture skips with the reason.
- munged runs as root with its own key, socket, pid and log under a temporary directory, so it
  neither needs nor disturbs a system munged; slurm.conf points SLURM at that socket (``AuthInfo``).
- slurm.conf is written to the default path ``/etc/slurm/slurm.conf`` because a job step started by
  the Snakemake SLURM executor drops ``SLURM_CONF``; a pre-existing file is restored on teardown.
- No accounting database (``accounting_storage/none``) and no cgroups (``proctrack/linuxproc``,
  ``task/none``): the executor must then poll with ``squeue``, which sees finished jobs only for
  ``MinJobAge`` seconds, hence the generous ``MinJobAge``.
- Teardown cancels the cluster's jobs and stops exactly the daemons it started, by process id.

A file lock serialises clusters across processes: there is only one ``/etc/slurm/slurm.conf``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO_ROOT / "profiles" / "slurm"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
CONF_MARKER = "# Written by tests/slurm_cluster.py"
DEBIAN_PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
# binary -> Debian package providing it
REQUIRED_BINARIES = {
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sbatch": "slurm-client",
    "squeue": "slurm-client",
    "sinfo": "slurm-client",
    "scancel": "slurm-client",
    "scontrol": "slurm-client",
    "munged": "munge",
    "mungekey": "munge",
}
LOCK_FILE = Path(tempfile.gettempdir()) / "vamoh-slurm-cluster.lock"
PARTITION = "debug"
NODE = "localhost"
# the executor's squeue polling only sees a finished job while slurmctld still remembers it
MIN_JOB_AGE_S = 3600  # longer than any workflow these tests run (the tiny DAG took 703 s on CI)
SUBMITTED_RE = re.compile(r"has been submitted with SLURM jobid (\d+)")
# The executor waits 20-40 s before its first status check (right for a busy cluster); a test
# cluster answers at once.
FAST_POLLING = ("--seconds-between-status-checks", "1", "--slurm-init-seconds-before-status-checks", "2")


# Starting a cluster changes the machine (apt-get install, /etc/slurm/slurm.conf): tests do it only
# when asked to, with this variable or pytest's --slurm option (tests/conftest.py sets the variable).
OPT_IN_ENV = "VAMOH_SLURM_TESTS"
OPT_IN_HINT = (f"real-SLURM tests are opt-in (they apt-get install SLURM and write {SLURM_CONF}); "
               f"enable with {OPT_IN_ENV}=1 or `python -m pytest --slurm`")


def opted_in() -> bool:
    """Whether the user asked for the real-SLURM tests (``VAMOH_SLURM_TESTS=1`` or ``--slurm``)."""
    return os.environ.get(OPT_IN_ENV, "").strip() == "1"


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be provided on this machine (the message says why); tests skip on it."""


# --------------------------------------------------------------------------------------------
# installation


def missing_binaries() -> list[str]:
    """Names of the SLURM/munge programs not found on PATH (sbin included)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [b for b in REQUIRED_BINARIES if shutil.which(b, path=path) is None]


def _apt_install(timeout_s: float) -> str:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", *DEBIAN_PACKAGES]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    if first.returncode == 0:
        return first.stdout + first.stderr
    # empty or stale package lists: refresh once, then retry
    update = subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=timeout_s)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    return update.stdout + update.stderr + second.stdout + second.stderr


def ensure_installed(timeout_s: float = 600) -> None:
    """Install Debian's SLURM and munge packages when a binary is missing.

    Cached in effect: does nothing when every binary already exists. Raises ``SlurmUnavailable``
    naming the missing programs when they are absent and cannot be installed.
    """
    missing = missing_binaries()
    if not missing:
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"SLURM programs missing ({', '.join(missing)}) and not root, so cannot apt-get install")
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable(f"SLURM programs missing ({', '.join(missing)}) and no apt-get on this machine")
    try:
        log = _apt_install(timeout_s)
    except (subprocess.TimeoutExpired, OSError) as e:
        raise SlurmUnavailable(f"apt-get install {' '.join(DEBIAN_PACKAGES)} failed: {e}") from e
    still = missing_binaries()
    if still:
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise SlurmUnavailable(
            f"after apt-get install {' '.join(DEBIAN_PACKAGES)} these programs are still missing: "
            f"{', '.join(still)}\n{tail}"
        )


# --------------------------------------------------------------------------------------------
# configuration


def node_hardware() -> str:
    """The node's ``CPUs=... RealMemory=...`` description as ``slurmd -C`` reports it."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=30)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("NodeName=")), None)
    if out.returncode != 0 or line is None:
        raise SlurmUnavailable(f"`slurmd -C` gave no node description (rc={out.returncode}): {out.stderr.strip()}")
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    fields.pop("NodeName", None)
    # registering with more memory than configured is fine; with less, the node is drained
    fields["RealMemory"] = str(int(int(fields.get("RealMemory", "1000")) * 0.95))
    return " ".join(f"{k}={v}" for k, v in fields.items())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_slurm_conf(state_dir: Path, munge_socket: Path, ctld_port: int, slurmd_port: int, hardware: str) -> str:
    """A complete slurm.conf for one node called ``localhost`` in one default partition."""
    return f"""\
{CONF_MARKER} for a throw-away single-node cluster; restored on teardown.
ClusterName=vamohtest
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={state_dir / "ctld-state"}
SlurmdSpoolDir={state_dir / "slurmd-spool"}
SlurmctldPidFile={state_dir / "slurmctld.pid"}
SlurmdPidFile={state_dir / "slurmd.pid"}
SlurmctldLogFile={state_dir / "slurmctld.log"}
SlurmdLogFile={state_dir / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge={MIN_JOB_AGE_S}
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={NODE} NodeAddr=127.0.0.1 {hardware} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


def client_env() -> dict[str, str]:
    """The environment for SLURM clients and Snakemake: ours, minus inherited SLURM job/config variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), "/usr/sbin", "/sbin"])
    return env


# --------------------------------------------------------------------------------------------
# the cluster


@dataclass
class SlurmCluster:
    """Handle on a running cluster: its state directory, daemons and a few queries."""

    state_dir: Path
    partition: str = PARTITION
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log_tail(self, lines: int = 20) -> str:
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log", "munged.out", "slurmctld.out", "slurmd.out"):
            p = self.state_dir / name
            if p.exists():
                text = p.read_text(errors="replace").strip().splitlines()[-lines:]
                parts.append(f"--- {p}\n" + "\n".join(text))
        return "\n".join(parts)

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=client_env())

    def node_state(self) -> str:
        out = self.run("sinfo", "-h", "-N", "-n", NODE, "-o", "%T")
        return out.stdout.strip() if out.returncode == 0 else f"sinfo failed: {out.stderr.strip()}"

    def job_ids(self) -> list[str]:
        out = self.run("squeue", "-h", "-o", "%i", "--states=PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED")
        return out.stdout.split() if out.returncode == 0 else []

    def job_state(self, job_id: str) -> str:
        """``JobState`` of a job slurmctld still remembers (finished ones for ``MinJobAge`` seconds)."""
        out = self.run("scontrol", "show", "job", job_id)
        m = re.search(r"JobState=(\S+)", out.stdout)
        return m.group(1) if m else f"unknown ({out.stderr.strip()})"

    def job_comment(self, job_id: str) -> str:
        out = self.run("scontrol", "show", "job", job_id)
        m = re.search(r"Comment=(\S+)", out.stdout)
        return m.group(1) if m else ""

    def wait_for_job_state(self, job_id: str, states: Sequence[str], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state in states:
                return state
            time.sleep(0.5)
        raise TimeoutError(f"SLURM job {job_id} is {state!r} after {timeout:.0f} s, expected one of {list(states)}")

    def cancel_all(self, timeout: float = 30) -> None:
        ids = self.job_ids()
        if not ids:
            return
        self.run("scancel", *ids)
        deadline = time.monotonic() + timeout
        while self.job_ids() and time.monotonic() < deadline:
            time.sleep(0.5)


def _spawn(name: str, cmd: list[str], state_dir: Path) -> subprocess.Popen:
    out = open(state_dir / f"{name}.out", "ab")
    try:
        # own session: a Ctrl-C meant for pytest does not reach the daemons mid-teardown
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=client_env(), start_new_session=True)
    finally:
        out.close()


def _wait(what: str, predicate, timeout: float, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        dead = [n for n, p in cluster.daemons.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}\n{cluster.log_tail()}")
        time.sleep(0.25)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}\n{cluster.log_tail()}")


def _stop(proc: subprocess.Popen, grace_s: float = 15) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def _exclusive(lock_path: Path, timeout: float) -> Iterator[None]:
    with open(lock_path, "a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another test cluster holds {lock_path} for more than {timeout:.0f} s")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def slurm_cluster(start_timeout: float = 60, lock_timeout: float = 600) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd for one node; yield a ``SlurmCluster``; stop them again.

    Raises ``SlurmUnavailable`` when the programs are missing and cannot be installed (or we are not
    root); ``RuntimeError`` with the daemons' log tails when they do not come up.
    """
    ensure_installed()
    if os.geteuid() != 0:
        raise SlurmUnavailable("a test SLURM cluster must run as root (slurmd launches jobs as any user)")
    with _exclusive(LOCK_FILE, lock_timeout):
        state_dir = Path(tempfile.mkdtemp(prefix="vamoh-slurm-"))
        state_dir.chmod(0o755)  # munged insists its socket's directories are traversable by all
        cluster = SlurmCluster(state_dir=state_dir)
        backup = SLURM_CONF.with_name(SLURM_CONF.name + ".vamoh-backup")
        had_conf = SLURM_CONF.exists()
        try:
            key = state_dir / "munge.key"
            subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True, timeout=30)
            sock = state_dir / "munge.socket"
            cluster.daemons["munged"] = _spawn("munged", [
                "munged", "--foreground", f"--socket={sock}", f"--key-file={key}",
                f"--log-file={state_dir / 'munged.log'}", f"--pid-file={state_dir / 'munged.pid'}",
                f"--seed-file={state_dir / 'munged.seed'}",
            ], state_dir)
            _wait("munged's socket", sock.exists, start_timeout, cluster)

            SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
            if backup.exists():  # an earlier cluster died before teardown: its backup is the original
                shutil.move(backup, SLURM_CONF)
                had_conf = True
            elif had_conf and SLURM_CONF.read_text(errors="replace").startswith(CONF_MARKER):
                had_conf = False  # a leftover of ours, not the machine's own configuration
            if had_conf:
                shutil.copy2(SLURM_CONF, backup)
            for sub in ("ctld-state", "slurmd-spool"):
                (state_dir / sub).mkdir()
            conf = render_slurm_conf(state_dir, sock, free_port(), free_port(), node_hardware())
            SLURM_CONF.write_text(conf)

            cluster.daemons["slurmctld"] = _spawn("slurmctld", ["slurmctld", "-D", "-i"], state_dir)
            _wait("slurmctld to answer `scontrol ping`",
                  lambda: "UP" in cluster.run("scontrol", "ping").stdout, start_timeout, cluster)
            cluster.daemons["slurmd"] = _spawn("slurmd", ["slurmd", "-D", "-N", NODE], state_dir)
            _wait(f"node {NODE} to be idle in sinfo", lambda: cluster.node_state() == "idle", start_timeout, cluster)
            yield cluster
        finally:
            try:
                if "slurmctld" in cluster.daemons and cluster.daemons["slurmctld"].poll() is None:
                    cluster.cancel_all()
            finally:
                # reverse start order: slurmd, slurmctld, munged
                for name in reversed(list(cluster.daemons)):
                    _stop(cluster.daemons[name])
                if had_conf and backup.exists():
                    shutil.move(backup, SLURM_CONF)
                elif not had_conf:
                    SLURM_CONF.unlink(missing_ok=True)
                if os.environ.get("VAMOH_KEEP_SLURM_STATE") != "1":
                    shutil.rmtree(state_dir, ignore_errors=True)


def slurm_cluster_or_skip():
    """``slurm_cluster()`` for pytest: skips (with the reason) when SLURM cannot be provided here.

    Also skips unless the user opted in (``opted_in``), so that no test module using the fixture
    can install packages or write slurm.conf on a machine whose owner did not ask for it.
    """
    import pytest

    if not opted_in():
        pytest.skip(OPT_IN_HINT)
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(slurm_cluster())
        except SlurmUnavailable as e:
            pytest.skip(f"no SLURM test cluster: {e}")
        yield cluster


def _make_fixture():
    try:
        import pytest
    except ImportError:  # the harness is also used by benchmarks, without pytest
        return None
    return pytest.fixture(scope="module", name="slurm")(slurm_cluster_or_skip)


#: pytest fixture named ``slurm``: ``from slurm_cluster import slurm_cluster_fixture`` in a test module.
slurm_cluster_fixture = _make_fixture()


# --------------------------------------------------------------------------------------------
# a small self-contained workflow: prepare -> fan-out of N trains -> aggregate

DEMO_SAMPLES = ("a", "b", "c")
DEMO_SNAKEFILE = """\
SAMPLES = {samples!r}

rule all:
    input: "results/gather.txt"

rule prepare_data:
    output: "results/base.txt"
    shell: "sleep {sleep}; echo base ${{{{SLURM_JOB_ID:-local}}}} > {{output}}"

rule train:
    input: "results/base.txt"
    output: "results/train/{{sample}}.txt"
    shell: "sleep {sleep}; echo {{wildcards.sample}} ${{{{SLURM_JOB_ID:-local}}}} > {{output}}"

rule aggregate:
    input: expand("results/train/{{sample}}.txt", sample=SAMPLES)
    output: "results/gather.txt"
    shell: "cat {{input}} > {{output}}; echo aggregate ${{{{SLURM_JOB_ID:-local}}}} >> {{output}}"
"""


def write_demo_workflow(root: Path, samples: Sequence[str] = DEMO_SAMPLES, sleep_s: float = 0) -> list[str]:
    """Write the demo Snakefile into ``root``; return its outputs (relative paths), in DAG order.

    Every job writes ``<name> $SLURM_JOB_ID`` into its output, so a test can tell which SLURM
    allocation (if any) produced it.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "Snakefile").write_text(DEMO_SNAKEFILE.format(samples=list(samples), sleep=sleep_s))
    return ["results/base.txt", *(f"results/train/{s}.txt" for s in samples), "results/gather.txt"]


# --------------------------------------------------------------------------------------------
# running a workflow through the cluster


@dataclass
class WorkflowRun:
    returncode: int
    output: str
    seconds: float

    @property
    def slurm_job_ids(self) -> list[str]:
        """SLURM job ids that the executor reported after ``sbatch``."""
        return SUBMITTED_RE.findall(self.output)


def snakemake_command(workdir: Path, profile: Path | None = SLURM_PROFILE, extra_args: Sequence[str] = (),
                      snakefile: Path | None = None) -> list[str]:
    """``python -m snakemake`` in ``workdir``; the Snakefile defaults to ``workdir/Snakefile``."""
    snakefile = snakefile or workdir / "Snakefile"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    return cmd + list(extra_args)


def start_workflow(workdir: Path, log_path: Path, profile: Path | None = SLURM_PROFILE,
                   extra_args: Sequence[str] = (), snakefile: Path | None = None) -> subprocess.Popen:
    """Start Snakemake in the background with stdout+stderr going to ``log_path``."""
    log = open(log_path, "wb")
    try:
        return subprocess.Popen(snakemake_command(workdir, profile, extra_args, snakefile), cwd=workdir,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=client_env(), start_new_session=True)
    finally:
        log.close()


def run_workflow(workdir: Path, profile: Path | None = SLURM_PROFILE, extra_args: Sequence[str] = (),
                 timeout: float = 300, snakefile: Path | None = None) -> WorkflowRun:
    """Run Snakemake to completion; a failed workflow does not raise (check ``returncode``)."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(snakemake_command(workdir, profile, extra_args, snakefile), cwd=workdir,
                              capture_output=True, text=True, timeout=timeout, env=client_env())
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise TimeoutError(f"snakemake did not finish within {timeout:.0f} s in {workdir}:\n{out}{err}") from e
    return WorkflowRun(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0)
