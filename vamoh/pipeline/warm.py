"""A warm process for the workflow's jobs: torch, MLflow and the suite imported once, each job forked from it.

Every job of the DAG is a new Python process, and a new process spends 5-8 s importing torch, torch's
compiler stack (which the first optimizer pulls in), MLflow and torch-fidelity before its work starts: a
quarter of the demo's job time (``benchmarks/results/demo_dag.md``). With this module each workflow script
starts with::

    from vamoh.pipeline.warm import handoff
    handoff(snakemake, __file__)

``handoff`` connects to a server for this Python and this package (started by the first job that finds
none; it imports what the jobs import, then waits). The server forks one child per job; the child takes
the job's working directory, environment, ``sys.path`` and standard streams (passed over the socket),
runs the script with the job's ``snakemake`` object, and exits with the script's status, which the job's
own process returns to Snakemake. Each job keeps its own process and its own outputs, logs and benchmark
record; only the imports are shared.

Nothing is reused that could be stale or wrong:

- the server notes the modification times of every module file of ``vamoh`` and ``baselines`` it loaded,
  and a job that finds one changed runs cold while the server exits;
- when the job's process dies (Snakemake cancelled it, or the whole run was killed), the server kills the
  job's child at once, so an interrupted training never runs on beside its rerun;
- the server does no computation before forking (torch's thread pools start in the children);
- it exits after ``IDLE_S`` seconds without a job.

Whatever fails on the way (no socket, a server that does not answer, a refused fork) makes the job run
cold, in its own process, exactly as without this module. Off by default under SLURM (each job is its own
allocation) and wherever ``VAMOH_WARM=0``. This module imports only the standard library, so a job's own
process stays light.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import pickle
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

IDLE_S = 60.0  # the server exits after this long without a job (VAMOH_WARM_IDLE_S in its environment)
START_TIMEOUT_S = 60.0  # how long a job waits for a server it started (its imports) before running cold
PRELOAD = ("torch", "torch._dynamo", "mlflow", "torch_fidelity", "sklearn.cluster", "skimage.metrics",
           # what MLflow imports when a job first opens its SQLite store (0.7 s a job otherwise)
           "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store", "mlflow.store.db.utils",
           "alembic.command", "alembic.runtime.migration", "sqlalchemy.dialects.sqlite",
           "vamoh.pipeline.stages", "vamoh.tracking", "vamoh.train", "vamoh.eval.evaluate", "vamoh.eval.reference",
           "vamoh.eval.arrays", "vamoh.report.ablations", "baselines", "snakemake.script")
_IN_CHILD = False  # set in a forked job: handoff() then returns at once
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding vamoh/ and baselines/


def enabled(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("VAMOH_WARM", "1") != "0" and "SLURM_JOB_ID" not in env


# read once when a process starts (the allocator, preloaded libraries, the thread pools torch sets up when imported): a
# forked job inherits the server's, so a job is served only by a server that started with the same values
START_ENV = ("GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_CONF", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED",
             "PYTHONMALLOC", "CUDA_VISIBLE_DEVICES")


def socket_path(env: dict[str, str] | None = None) -> Path:
    """One server per user, Python, package copy and start-time environment (START_ENV); a socket path must stay
    under 108 bytes."""
    env = os.environ if env is None else env
    start = "\0".join(f"{k}={env.get(k, '')}" for k in START_ENV)
    key = hashlib.sha256(f"{sys.executable}\0{_PACKAGE_ROOT}\0{sys.version}\0{start}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"vamoh-warm-{os.getuid()}-{key}.sock"


# ---------------------------------------------------------------------------------------------- the job's side


def _send(sock: socket.socket, payload: bytes, fds: list[int] | None = None) -> None:
    header = struct.pack("!Q", len(payload))
    if fds:
        sock.sendmsg([header], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(header)
    sock.sendall(payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def _connect(path: Path, timeout: float = 2.0) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError:
        s.close()
        return None
    s.settimeout(None)
    return s


def _start_server(path: Path) -> socket.socket | None:
    """Start a server unless another job is starting one (a lock file), and connect once it listens."""
    import fcntl

    if len(str(path).encode()) > 100:  # beyond what a Unix socket's address holds: run cold
        return None
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a job arriving while another starts the server waits for it
        sock = _connect(path)
        if sock is not None:
            return sock
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        log = open(str(path) + ".log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "vamoh.pipeline.warm", "serve", str(path)], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, start_new_session=True, close_fds=True, cwd="/",
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])})
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            sock = _connect(path)
            if sock is not None:
                return sock
            if proc.poll() is not None:  # the server failed to start (its log says why): run cold
                return None
            time.sleep(0.1)
    return None


def handoff(snakemake: Any, script: str) -> None:
    """Run this job's script in a child of the warm server and exit with its status; return (and so run the
    script here, cold) when this already is such a child, when warm jobs are off, or when anything fails."""
    if _IN_CHILD or not enabled():
        return
    try:
        request = pickle.dumps({"script": str(Path(script).resolve()), "snakemake": snakemake, "cwd": os.getcwd(),
                                "env": dict(os.environ), "sys_path": list(sys.path)})
        path = socket_path()
        sock = _connect(path) or _start_server(path)
        if sock is None:
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        _send(sock, request, [0, 1, 2])
    except Exception:  # noqa: BLE001 (any failure before the server has the job: run cold)
        return
    try:
        reply = json.loads(_recv_exact(sock, struct.unpack("!Q", _recv_exact(sock, 8))[0]))
    except Exception as e:  # noqa: BLE001 (the server took the job and then vanished: not run twice, a failed job)
        print(f"vamoh.pipeline.warm: the warm server ({path}) stopped answering during this job ({e!r}); the job "
              f"is failed, not run a second time; rerun it (VAMOH_WARM=0 runs jobs without the server)", file=sys.stderr)
        os._exit(1)
    if reply.get("status") != "done":  # "stale" (the code changed) or "refused": nothing ran, run cold
        return
    os._exit(int(reply["rc"]))


# ---------------------------------------------------------------------------------------------- the server's side


def _loaded_sources() -> dict[str, int]:
    roots = tuple(str(_PACKAGE_ROOT / p) for p in ("vamoh", "baselines"))
    out = {}
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and f.startswith(roots):
            try:
                out[f] = os.stat(f).st_mtime_ns
            except OSError:
                out[f] = -1
    return out


def _changed(sources: dict[str, int]) -> list[str]:
    bad = []
    for f, m in sources.items():
        try:
            now = os.stat(f).st_mtime_ns
        except OSError:
            now = -1
        if now != m:
            bad.append(f)
    return bad


def _run_child(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become the job and run its script; never returns."""
    global _IN_CHILD
    _IN_CHILD = True
    rc = 1
    try:
        os.setpgid(0, 0)  # its own process group: the server kills the job's whole group when the job's process dies
        try:  # and the job dies with the server (PR_SET_PDEATHSIG = 1, SIGKILL)
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
        except Exception:  # noqa: BLE001 (not Linux: the server's exit path still kills its jobs)
            pass
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = request["sys_path"]
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        sys.argv = [request["script"]]
        import runpy

        runpy.run_path(request["script"], init_globals={"snakemake": request["snakemake"]}, run_name="__main__")
        rc = 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 (the job's failure, reported like Python would)
        traceback.print_exc()
        rc = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(rc)


class _Job:
    def __init__(self, conn: socket.socket, pid: int):
        self.conn, self.pid = conn, pid
        self.pidfd = os.pidfd_open(pid)


def serve(path: str) -> None:
    """Import what the jobs import, listen on ``path``, fork a child per job; exit after IDLE_S idle seconds."""
    import importlib

    try:  # the server waits on its jobs through pidfds (Linux 5.3+); without them jobs run cold
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError) as e:
        print(f"warm: no pidfd_open ({e}): not serving", flush=True)
        return
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 (a job imports what it needs itself)
            print(f"warm: not preloaded {name}: {e}", flush=True)
    sources = _loaded_sources()
    idle_s = float(os.environ.get("VAMOH_WARM_IDLE_S", IDLE_S))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{path}.{os.getpid()}"
    listener.bind(tmp)
    os.replace(tmp, path)  # appear only when ready
    inode = os.stat(path).st_ino
    listener.listen(64)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "listen")
    jobs: dict[int, _Job] = {}
    last = time.monotonic()
    print(f"warm: serving on {path} (pid {os.getpid()})", flush=True)
    try:
        while True:
            events = sel.select(timeout=1.0)
            for key, _ in events:
                if key.data == "listen":
                    conn, _ = listener.accept()
                    last = time.monotonic()
                    try:
                        msg, anc, _, _ = conn.recvmsg(8, socket.CMSG_SPACE(3 * array.array("i").itemsize))
                        fds = []
                        for level, kind, data in anc:
                            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                                fds += list(array.array("i", data[: len(data) - len(data) % 4]))
                        if len(msg) < 8:
                            msg += _recv_exact(conn, 8 - len(msg))
                        request = pickle.loads(_recv_exact(conn, struct.unpack("!Q", msg)[0]))
                    except Exception as e:  # noqa: BLE001
                        print(f"warm: bad request: {e}", flush=True)
                        conn.close()
                        continue
                    stale = _changed(sources)
                    if stale or len(fds) != 3:
                        _send(conn, json.dumps({"status": "stale" if stale else "refused"}).encode())
                        conn.close()
                        for fd in fds:
                            os.close(fd)
                        if stale:
                            print(f"warm: code changed ({stale[0]}...): exiting", flush=True)
                            return
                        continue
                    pid = os.fork()
                    if pid == 0:
                        sel.close()
                        listener.close()
                        conn.close()
                        for other in jobs.values():
                            other.conn.close()
                            os.close(other.pidfd)
                        _run_child(request, fds)
                    for fd in fds:
                        os.close(fd)
                    job = _Job(conn, pid)
                    jobs[pid] = job
                    sel.register(job.pidfd, selectors.EVENT_READ, ("exit", pid))
                    sel.register(conn, selectors.EVENT_READ, ("conn", pid))
                else:
                    kind, pid = key.data
                    job = jobs.get(pid)
                    if job is None:
                        continue
                    if kind == "conn":  # the job's process closed its end: it died; the child goes with it
                        try:
                            data = job.conn.recv(1)
                        except OSError:
                            data = b""
                        if data:
                            continue
                        try:
                            os.killpg(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    _, status = os.waitpid(pid, 0)
                    rc = os.waitstatus_to_exitcode(status)
                    if rc < 0:  # killed by a signal: the job's process exits like a killed process would
                        rc = 128 - rc
                    sel.unregister(job.pidfd)
                    sel.unregister(job.conn)
                    os.close(job.pidfd)
                    try:
                        _send(job.conn, json.dumps({"status": "done", "rc": rc}).encode())
                    except OSError:
                        pass
                    job.conn.close()
                    del jobs[pid]
                    last = time.monotonic()
            if not jobs and time.monotonic() - last > idle_s:
                print("warm: idle, exiting", flush=True)
                return
    finally:
        for job in jobs.values():
            try:
                os.killpg(job.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            if os.stat(path).st_ino == inode:  # still ours, not a successor's
                os.unlink(path)
        except OSError:
            pass
        listener.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        from vamoh.pipeline.warm import serve as _serve  # the module itself, whose _IN_CHILD a job's script reads

        _serve(sys.argv[2])
    else:
        sys.exit("usage: python -m vamoh.pipeline.warm serve SOCKET")
