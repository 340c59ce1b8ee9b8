"""The SLURM profile drives a real (single-node, loopback) SLURM cluster end to end.

The cluster comes from ``tests/slurm_cluster.py``. It installs Debian's SLURM packages and writes
/etc/slurm/slurm.conf, so these tests are opt-in: they run with ``VAMOH_SLURM_TESTS=1`` (as CI does,
in ``.ci/run``) or ``python -m pytest --slurm``, and otherwise they skip with one summary line.
Once enabled, they skip only when SLURM cannot be installed on this machine. Each case is a
(workflow dir, extra snakemake args, expected outputs) triple, so the same checks can be pointed at
the project's own tiny workflow config.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    from slurm_cluster import (DEMO_SAMPLES, FAST_POLLING, OPT_IN_ENV, SLURM_PROFILE, SUBMITTED_RE, WorkflowRun,
                               run_workflow, slurm_cluster_fixture, start_workflow, write_demo_workflow)
except ImportError:  # tests/ imported as a package
    from tests.slurm_cluster import (DEMO_SAMPLES, FAST_POLLING, OPT_IN_ENV, SLURM_PROFILE, SUBMITTED_RE,
                                     WorkflowRun, run_workflow, slurm_cluster_fixture, start_workflow,
                                     write_demo_workflow)

# Tests that start the cluster are marked `slurm`: tests/conftest.py skips them, before any fixture
# runs, unless the user opted in.
slurm = slurm_cluster_fixture

# `slow` sleeps until released (the marker file exists), so it can be cancelled while running.
CANCEL_SNAKEFILE = """\
rule all:
    input: "results/after.txt"

rule slow:
    output: "results/slow.txt"
    shell: "while [ ! -e release ]; do sleep 0.5; done; echo slow $SLURM_JOB_ID > {output}"

rule after:
    input: "results/slow.txt"
    output: "results/after.txt"
    shell: "cat {input} > {output}"
"""


@dataclass
class WorkflowCase:
    """A workflow to run through the SLURM profile and what a correct run leaves behind.

    ``workdir``: where Snakemake runs (``--directory``); ``snakefile`` defaults to ``workdir/Snakefile``.
    ``expected_outputs``: paths relative to ``workdir``. ``n_jobs``: SLURM submissions expected
    (``None``: at least one). ``outputs_carry_job_id``: each output holds ``<name> $SLURM_JOB_ID``.
    ``check``: further assertions on the outputs.
    """

    workdir: Path
    expected_outputs: list[str]
    extra_args: list[str] = field(default_factory=lambda: list(FAST_POLLING))
    snakefile: Path | None = None
    n_jobs: int | None = None
    outputs_carry_job_id: bool = False
    timeout_s: float = 240
    check: Callable[[WorkflowCase], None] | None = None


def _gathered_every_branch(case: WorkflowCase) -> None:
    names = (case.workdir / "results/gather.txt").read_text().split()[::2]
    assert names == [*DEMO_SAMPLES, "aggregate"], f"gather.txt lists {names}"


def demo_case(tmp_path: Path) -> WorkflowCase:
    outputs = write_demo_workflow(tmp_path / "demo", DEMO_SAMPLES)
    return WorkflowCase(tmp_path / "demo", outputs, n_jobs=len(outputs), outputs_carry_job_id=True,
                        check=_gathered_every_branch)


# Point the same checks at another workflow by adding a factory here, e.g. the project's tiny config:
#   "tiny": lambda tmp: WorkflowCase(tmp, [...], ["--configfile", ".../config/tiny.yaml", *FAST_POLLING],
#                                    snakefile=REPO_ROOT / "Snakefile")
REPO = Path(__file__).resolve().parents[1]
TINY_OUTPUTS = [f"reports/tiny/{t}.{ext}" for t in ("table1", "table2", "table3", "table4", "table5", "reconstruction")
                for ext in ("csv", "md", "tex", "html")] + ["results/tiny/tidy.csv", "results/tiny/report.done"]


def _tiny_tables_filled(case: WorkflowCase) -> None:
    table2 = (case.workdir / "reports/tiny/table2.md").read_text()
    assert "0.00453" in table2 and "PolyMNIST" in table2  # the paper's value beside ours
    tidy = (case.workdir / "results/tiny/tidy.csv").read_text()
    assert "time_reconstruction" in tidy and "fid_train" in tidy


def tiny_case(tmp_path: Path) -> WorkflowCase:
    """The project's own tiny config (config/tiny.yaml), every rule submitted through sbatch."""
    work = tmp_path / "tiny"
    work.mkdir()
    return WorkflowCase(work, TINY_OUTPUTS, ["--configfile", str(REPO / "config/tiny.yaml"), *FAST_POLLING],
                        snakefile=REPO / "Snakefile", timeout_s=1500, check=_tiny_tables_filled)


CASES = {"demo-fan-out": demo_case, "tiny-config": tiny_case}


def job_ids_in_outputs(case: WorkflowCase) -> set[str]:
    """The ``$SLURM_JOB_ID`` each job wrote into its output (empty outside a SLURM allocation)."""
    ids = set()
    for rel in case.expected_outputs:
        for line in (case.workdir / rel).read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                ids.add(parts[1])
    return ids


def assert_ran_through_slurm(run: WorkflowRun, case: WorkflowCase, slurm) -> None:
    assert run.returncode == 0, f"snakemake failed (rc={run.returncode}):\n{run.output[-6000:]}"
    missing = [p for p in case.expected_outputs if not (case.workdir / p).is_file()]
    assert not missing, f"outputs missing after a successful run: {missing}"
    submitted = run.slurm_job_ids
    if case.n_jobs is None:
        assert submitted, f"no job went through sbatch:\n{run.output[-4000:]}"
    else:
        assert len(submitted) == case.n_jobs, f"expected {case.n_jobs} sbatch submissions, log shows {submitted}"
    if case.outputs_carry_job_id:  # each job ran inside the allocation it was submitted as
        assert job_ids_in_outputs(case) == set(submitted)
    for job_id in submitted:
        assert slurm.job_state(job_id) == "COMPLETED", f"SLURM job {job_id}: {slurm.job_state(job_id)}"
        assert slurm.job_comment(job_id).startswith("rule_"), f"job {job_id} was not submitted by the executor"
    logs = list((case.workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} >= set(submitted), f"SLURM logs {logs} do not cover jobs {submitted}"
    if case.check is not None:
        case.check(case)


@pytest.mark.parametrize("make_case", CASES.values(), ids=CASES.keys())
@pytest.mark.slurm
@pytest.mark.slow
def test_workflow_runs_as_slurm_jobs(slurm, tmp_path, make_case):
    case = make_case(tmp_path)
    run = run_workflow(case.workdir, SLURM_PROFILE, case.extra_args, case.timeout_s, case.snakefile)
    assert_ran_through_slurm(run, case, slurm)

    # nothing left to do: a second invocation submits nothing
    again = run_workflow(case.workdir, SLURM_PROFILE, case.extra_args, 120, case.snakefile)
    assert again.returncode == 0, again.output[-3000:]
    assert again.slurm_job_ids == [], f"up-to-date workflow resubmitted jobs: {again.slurm_job_ids}"


def _wait_for_submission(log: Path, proc, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = SUBMITTED_RE.search(log.read_text(errors="replace"))
        if m:
            return m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"no SLURM submission within {timeout:.0f} s (rc={proc.poll()}):\n{log.read_text()[-4000:]}")


@pytest.mark.slurm
@pytest.mark.slow
def test_cancelled_job_fails_the_run_and_a_rerun_completes(slurm, tmp_path):
    wd = tmp_path / "cancel"
    wd.mkdir()
    (wd / "Snakefile").write_text(CANCEL_SNAKEFILE)
    log = tmp_path / "first.log"
    proc = start_workflow(wd, log, SLURM_PROFILE, list(FAST_POLLING))
    try:
        job_id = _wait_for_submission(log, proc, timeout=90)
        slurm.wait_for_job_state(job_id, ["RUNNING"], timeout=60)
        cancelled = slurm.run("scancel", job_id)
        assert cancelled.returncode == 0, cancelled.stderr
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text(errors="replace")
    assert rc != 0, f"snakemake succeeded although SLURM job {job_id} was cancelled:\n{text[-4000:]}"
    assert re.search(rf"SLURM-job '{job_id}' failed, SLURM status is: 'CANCELLED", text), text[-4000:]
    assert not (wd / "results/after.txt").exists()
    assert slurm.job_state(job_id) == "CANCELLED"

    (wd / "release").touch()
    rerun = run_workflow(wd, SLURM_PROFILE, list(FAST_POLLING), timeout=180)
    assert rerun.returncode == 0, rerun.output[-6000:]
    assert len(rerun.slurm_job_ids) == 2 and job_id not in rerun.slurm_job_ids
    assert (wd / "results/after.txt").read_text().split() == ["slow", rerun.slurm_job_ids[0]]


# --------------------------------------------------------------------------------------------
# the opt-in itself (runs everywhere: it starts no cluster)


def _pytest_here(*args: str, opt_in: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != OPT_IN_ENV}
    if opt_in:
        env[OPT_IN_ENV] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, __file__],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_slurm_tests_skip_in_one_line_unless_opted_in():
    slurm_tests = ["test_workflow_runs_as_slurm_jobs[demo-fan-out]", "test_workflow_runs_as_slurm_jobs[tiny-config]",
                   "test_cancelled_job_fails_the_run_and_a_rerun_completes"]
    # without the variable: every SLURM test skipped before its fixture (which would apt-get install),
    # with one summary line that says how to enable them, and a clean exit
    off = _pytest_here("-q", "-rs", "-m", "slurm", opt_in=False)
    skipped = [ln for ln in off.stdout.splitlines() if ln.startswith("SKIPPED")]
    assert off.returncode == 0, off.stdout[-3000:] + off.stderr[-3000:]
    assert f"{len(slurm_tests)} skipped" in off.stdout, off.stdout[-3000:]
    assert len(skipped) == 1 and f"{OPT_IN_ENV}=1" in skipped[0] and "--slurm" in skipped[0], skipped
    assert "no SLURM test cluster" not in off.stdout  # the fixture never ran
    # with it: the same tests are collected to run (collection starts no cluster)
    on = _pytest_here("--collect-only", "-q", "-m", "slurm", opt_in=True)
    assert on.returncode == 0, on.stdout[-3000:] + on.stderr[-3000:]
    assert sorted(ln.split("::", 1)[1] for ln in on.stdout.splitlines() if "::" in ln) == sorted(slurm_tests)
