"""The interleaved timing harness: ordering, warm-up, statistics, device record. No time thresholds."""

from __future__ import annotations

import pytest
import torch

from vamoh.checks import ConfigError
from vamoh.eval import keys
from vamoh.eval.timing import TimingStats, describe_device, reconstruction_candidates, speedups, time_interleaved, timing_record


def busy(n: int):
    def f():
        x = torch.ones(n)
        for _ in range(3):
            x = x * 1.0001
        return x

    return f


def test_statistics_are_ordered_and_positive():
    stats = time_interleaved({"small": busy(10), "large": busy(100_000)}, repeats=50, warmup=2)
    assert list(stats) == ["small", "large"]
    for s in stats.values():
        assert s.repeats == 50
        assert 0 < s.min <= s.q25 <= s.median <= s.q75 <= s.max
        assert s.iqr == pytest.approx(s.q75 - s.q25)
        assert s.min <= s.mean <= s.max


def test_calls_are_interleaved_round_robin_after_warmup():
    log: list[str] = []
    cands = {name: (lambda name=name: log.append(name)) for name in "abc"}
    time_interleaved(cands, repeats=4, warmup=2, device="cpu")
    warm, timed = log[:6], log[6:]
    assert warm == list("abcabc")
    assert len(timed) == 12
    rounds = [timed[i : i + 3] for i in range(0, 12, 3)]
    assert all(sorted(r) == list("abc") for r in rounds)  # every candidate once per repeat
    assert [r[0] for r in rounds] == list("abca")  # the starting candidate rotates


def test_stats_from_samples_match_numpy_percentiles():
    samples = [0.3, 0.1, 0.4, 0.2, 0.5]
    s = TimingStats.from_samples(samples)
    assert (s.min, s.q25, s.median, s.q75, s.max) == pytest.approx((0.1, 0.2, 0.3, 0.4, 0.5))
    assert s.scaled(0.5).median == pytest.approx(0.15) and s.scaled(0.5).repeats == 5


def test_speedups_and_record():
    stats = {"vamoh": TimingStats.from_samples([1.0, 1.0]), "functa3": TimingStats.from_samples([3.0, 3.0])}
    assert speedups(stats, "vamoh") == pytest.approx({"vamoh": 1.0, "functa3": 3.0})
    rec = timing_record(keys.TIME_RECONSTRUCTION, stats, batch_size=4, reference="vamoh")
    assert rec["seconds_per_sample"]["functa3"]["median"] == pytest.approx(0.75)
    assert rec["speedup_vs_reference"]["functa3"] == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="reference='gasp'"):
        speedups(stats, "gasp")


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="repeats=0"):
        time_interleaved({"a": lambda: None}, repeats=0)
    with pytest.raises(ConfigError, match="no candidates"):
        time_interleaved({}, repeats=5)


def test_device_description_names_cpu_torch_and_threads():
    info = describe_device("cpu")
    assert info["torch_version"] == torch.__version__
    assert info["torch_threads"] == torch.get_num_threads()
    assert isinstance(info["cpu"], str) and info["cpu"]


def test_reconstruction_candidates_call_each_model():
    class M:
        def __init__(self, k):
            self.k = k

        def reconstruct(self, observed, query):
            return self.k

    cands = reconstruction_candidates({"a": M(1), "b": M(2)}, object(), torch.zeros(1, 2))
    assert cands["a"]() == 1 and cands["b"]() == 2


def test_a_time_budget_adapts_the_repeats_within_bounds():
    """eval.timing_budget_s: the repeats are cut to fit the budget (one round = every candidate once), never below 3."""
    import time

    from vamoh.eval.timing import MIN_BUDGET_REPEATS, time_interleaved

    calls = {"a": lambda: time.sleep(0.004), "b": lambda: time.sleep(0.006)}  # one round: about 10 ms
    stats = time_interleaved(calls, repeats=500, warmup=1, budget_s=0.3)
    n = stats["a"].repeats
    assert stats["b"].repeats == n and 15 <= n <= 31, n  # about 0.3 s / 10 ms = 30 rounds, sleep overshoots only shorten it
    few = time_interleaved(calls, repeats=500, warmup=0, budget_s=0.001)
    assert few["a"].repeats == MIN_BUDGET_REPEATS
    capped = time_interleaved(calls, repeats=12, warmup=0, budget_s=100.0)
    assert capped["a"].repeats == 12
