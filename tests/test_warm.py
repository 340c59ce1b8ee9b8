"""The warm server (vamoh.pipeline.warm): a job's script runs in a child of one process that imported torch and
MLflow once, with the job's streams, directory, environment and exit status; a killed job's child dies with it;
anything failing runs the job cold."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from vamoh.pipeline import warm

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import json, os, sys, time, types
    from vamoh.pipeline.warm import handoff

    def keeps_freed():
        """Whether glibc keeps a freed 64 MB block in the heap (the tuned allocator) instead of unmapping it."""
        import ctypes
        libc = ctypes.CDLL(None)
        libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
        class Info(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                         "fsmblks", "uordblks", "fordblks", "keepcost")]
        libc.mallinfo2.restype = Info
        libc.free(libc.malloc(64 << 20))
        return libc.mallinfo2().keepcost >= 64 << 20

    if "snakemake" not in globals():  # the job's own process: the object Snakemake's preamble would define
        snakemake = types.SimpleNamespace(out=sys.argv[1], mode=sys.argv[2])
    handoff(snakemake, __file__)
    with open(snakemake.out, "w") as f:
        json.dump({"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(), "x": os.environ.get("VAMOH_TEST_X"),
                   "torch_loaded": "torch" in sys.modules and "mlflow" in sys.modules,
                   "keeps_freed": keeps_freed()}, f)
    print("to stdout")
    print("to stderr", file=sys.stderr)
    if snakemake.mode == "sleep":
        time.sleep(120)
    if snakemake.mode == "fail":
        raise ValueError("the job failed")
    sys.exit(3)
''')


@pytest.fixture
def short_tmp():
    """A short temporary directory (a socket's path holds at most ~100 bytes), the server's home for this test."""
    d = Path(tempfile.mkdtemp(prefix="vw"))
    yield d
    for pid in server_pids(d):  # stop this test's server
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    shutil.rmtree(d, ignore_errors=True)


def run_job(tmp: Path, mode: str = "exit", **env) -> tuple[subprocess.CompletedProcess, dict]:
    import json

    script = tmp / "job.py"
    script.write_text(SCRIPT)
    out = tmp / f"out-{time.monotonic_ns()}.json"
    full_env = {**os.environ, "TMPDIR": str(tmp), "VAMOH_TEST_X": "job-env", "VAMOH_WARM_IDLE_S": "30", **env}
    full_env.pop("SLURM_JOB_ID", None)
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, str(script), str(out), mode], cwd=work, env=full_env, capture_output=True,
                          text=True, timeout=240)
    return proc, json.loads(out.read_text())


def server_pids(tmp: Path) -> list[int]:
    """Every server started with ``tmp`` as its temporary directory, in the order they started (from their logs)."""
    return [int(pid) for log in sorted(tmp.glob("vamoh-warm-*.log"))
            for pid in re.findall(r"serving on .* \(pid (\d+)\)", log.read_text())]


def server_pid(tmp: Path) -> int:
    (_one_log,) = tmp.glob("vamoh-warm-*.log")  # one server for the test's temporary directory
    return server_pids(tmp)[-1]


def test_a_job_runs_in_a_child_of_the_server_with_its_streams_directory_environment_and_status(short_tmp):
    first, rec = run_job(short_tmp)
    assert first.returncode == 3, first.stderr
    assert "to stdout" in first.stdout and "to stderr" in first.stderr
    assert rec["cwd"] == str(short_tmp / "work") and rec["x"] == "job-env"
    server = server_pid(short_tmp)
    assert rec["ppid"] == server and rec["torch_loaded"]  # forked from the server, which had imported torch and MLflow
    second, rec2 = run_job(short_tmp, VAMOH_TEST_X="another")
    assert second.returncode == 3 and rec2["ppid"] == server and rec2["x"] == "another"  # the same server, the new env
    assert rec2["pid"] != rec["pid"]


def test_a_job_is_served_only_by_a_server_started_with_its_allocator_settings(short_tmp):
    """GLIBC_TUNABLES (config key malloc) takes effect when a process starts; a forked job inherits its server's."""
    from vamoh.pipeline.runconfig import TUNED_GLIBC

    plain = {k: v for k, v in os.environ.items() if k not in warm.START_ENV}
    assert warm.socket_path({**plain, "VAMOH_TEST_X": "1"}) == warm.socket_path(plain)  # any other variable: one server
    assert warm.socket_path({**plain, "GLIBC_TUNABLES": TUNED_GLIBC}) != warm.socket_path(plain)
    _, tuned = run_job(short_tmp, GLIBC_TUNABLES=TUNED_GLIBC)
    _, other = run_job(short_tmp, GLIBC_TUNABLES="glibc.malloc.arena_max=1")
    _, again = run_job(short_tmp, GLIBC_TUNABLES=TUNED_GLIBC)
    assert tuned["keeps_freed"] and not other["keeps_freed"] and again["keeps_freed"]  # each job had its setting's allocator
    assert tuned["ppid"] in server_pids(short_tmp) and other["ppid"] in server_pids(short_tmp)
    assert tuned["ppid"] != other["ppid"] and again["ppid"] == tuned["ppid"]  # two servers, each serving its own setting


def test_a_failing_job_reports_its_traceback_and_status(short_tmp):
    proc, rec = run_job(short_tmp, mode="fail")
    assert proc.returncode == 1
    assert "ValueError: the job failed" in proc.stderr and "Traceback" in proc.stderr
    assert rec["ppid"] == server_pid(short_tmp)


def test_switched_off_the_job_runs_cold_in_its_own_process(short_tmp):
    for env in ({"VAMOH_WARM": "0"}, {"SLURM_JOB_ID": "7"}):
        script = short_tmp / "job.py"
        script.write_text(SCRIPT)
        out = short_tmp / "cold.json"
        full_env = {**os.environ, "TMPDIR": str(short_tmp), **env}
        proc = subprocess.Popen([sys.executable, str(script), str(out), "exit"], env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        proc.communicate(timeout=240)
        import json

        assert proc.returncode == 3 and json.loads(out.read_text())["pid"] == proc.pid
    assert not list(short_tmp.glob("vamoh-warm-*.sock"))  # no server was started


def test_a_killed_job_takes_its_child_with_it(short_tmp):
    import json

    script = short_tmp / "job.py"
    script.write_text(SCRIPT)
    out = short_tmp / "sleep.json"
    env = {**os.environ, "TMPDIR": str(short_tmp), "VAMOH_WARM_IDLE_S": "30"}
    env.pop("SLURM_JOB_ID", None)
    proc = subprocess.Popen([sys.executable, str(script), str(out), "sleep"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not out.exists() and time.time() < deadline:
        time.sleep(0.1)
    child = json.loads(out.read_text())["pid"]
    assert child != proc.pid
    os.kill(proc.pid, signal.SIGKILL)  # Snakemake cancelled the job, or the run was killed
    proc.wait()
    deadline = time.time() + 10
    while Path(f"/proc/{child}").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists(), "the job's child outlived the job"
    again, rec = run_job(short_tmp)  # and the server serves the next job
    assert again.returncode == 3 and rec["ppid"] == server_pid(short_tmp)


def test_a_changed_source_file_is_noticed(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    seen = {str(f): os.stat(f).st_mtime_ns}
    assert warm._changed(seen) == []
    os.utime(f, ns=(0, os.stat(f).st_mtime_ns + 1_000_000))
    assert warm._changed(seen) == [str(f)]
    f.unlink()
    assert warm._changed(seen) == [str(f)]


def test_the_servers_preload_covers_what_every_workflow_script_imports_first():
    """Every script hands off before anything heavy, and the modules its stage needs are preloaded."""
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        lines = [ln for ln in script.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        assert lines[0] == "from vamoh.pipeline.warm import handoff" and lines[1].startswith("handoff(snakemake, __file__)"), script
    out = subprocess.run([sys.executable, "-c", "import sys, vamoh.pipeline.warm; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the job's own process stays light
