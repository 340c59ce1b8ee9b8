"""Where a workflow job's time goes (vamoh.pipeline.jobclock): the log line that benchmarks/bench_demo.py reads."""

from __future__ import annotations

import time

import pytest

from vamoh.pipeline import jobclock
from vamoh.pipeline.scriptlog import logged


@pytest.fixture(autouse=True)
def _fresh_clock():
    jobclock.reset()
    yield
    jobclock.reset()


def test_clocked_blocks_add_up_per_category_and_reach_the_log(tmp_path):
    log = tmp_path / "job.log"
    with logged(log):
        with jobclock.clock("work"):
            time.sleep(0.2)
        with jobclock.clock("data"):
            time.sleep(0.05)
        with jobclock.clock("work"):
            time.sleep(0.1)
    rec = jobclock.parse(log.read_text())
    assert rec["work_s"] == pytest.approx(0.3, abs=0.05)
    assert rec["data_s"] == pytest.approx(0.05, abs=0.04)
    # the process (this pytest run) is older than the blocks it ran
    assert rec["process_s"] > rec["work_s"] + rec["data_s"]


def test_a_failed_job_writes_no_clock_line_and_a_rerun_reads_its_own(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(RuntimeError):
        with logged(log):
            with jobclock.clock("work"):
                raise RuntimeError("boom")
    assert jobclock.parse(log.read_text()) is None
    assert "RuntimeError: boom" in log.read_text()
    jobclock.reset()
    with logged(log):  # the rerun appends to the same log; its line is the one read
        with jobclock.clock("work"):
            time.sleep(0.05)
    assert jobclock.parse(log.read_text())["work_s"] == pytest.approx(0.05, abs=0.04)


def test_timed_counts_entering_and_leaving_not_the_body():
    class Slow:
        def __enter__(self):
            time.sleep(0.1)
            return "run"

        def __exit__(self, *exc):
            time.sleep(0.1)
            return False

    with jobclock.timed(Slow(), "tracking") as run:
        assert run == "run"
        time.sleep(0.3)
    assert jobclock._spent["tracking"] == pytest.approx(0.2, abs=0.06)
    with pytest.raises(ValueError):  # an exception inside still leaves through __exit__, and is not swallowed
        with jobclock.timed(Slow(), "tracking"):
            raise ValueError
    assert jobclock._spent["tracking"] == pytest.approx(0.4, abs=0.1)


def test_bench_demo_splits_job_time_into_work_and_overhead(tmp_path):
    """A fake run tree: two train jobs with benchmark files and logs, one without a clock line."""
    from benchmarks.bench_demo import summarise

    bench = tmp_path / "results" / "r" / "benchmarks"
    logs = tmp_path / "logs" / "r"
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for seed, (s, work) in enumerate([(10.0, 7.0), (20.0, 15.0)]):
        (bench / "d" / "m" / f"seed{seed}").mkdir(parents=True)
        (bench / "d" / "m" / f"seed{seed}" / "train.tsv").write_text(header + f"{s}\t0:00:{int(s)}\t100\t0\t0\t0\t0\t0\t50\t1\n")
        (logs / "d" / "m" / f"seed{seed}").mkdir(parents=True)
        (logs / "d" / "m" / f"seed{seed}" / "train.log").write_text(
            "noise\n" + jobclock.PREFIX + '{"process_s": 1, "work_s": 99, "data_s": 0}\n'  # an earlier attempt
            + jobclock.PREFIX + f'{{"process_s": {s - 1}, "work_s": {work}, "data_s": 0.5, "tracking_s": 1.0, '
            + ('"glibc_tunables": "glibc.malloc.mmap_max=0"}\n' if seed else '"glibc_tunables": null}\n'))
    (bench / "data").mkdir()
    (bench / "data" / "d.tsv").write_text(header + "3.0\t0:00:03\t50\t0\t0\t0\t0\t0\t50\t1\n")
    rows, total, allocators = summarise("r", tmp_path)
    by = {r["rule"]: r for r in rows}
    assert total == pytest.approx(33.0)
    assert allocators == ["(unset: default malloc)", "glibc.malloc.mmap_max=0"]  # what each job's process started with
    assert by["train"]["jobs"] == 2 and by["train"]["clocked"] == 2
    assert by["train"]["work_s"] == pytest.approx(22.0)
    assert by["train"]["tracking_s"] == pytest.approx(2.0)
    assert by["prepare_data"]["clocked"] == 0  # no log: counted as a job, not as clocked
