"""Opt-in for the tests that change the machine they run on.

The real-SLURM tests (tests/test_slurm.py, marked ``slurm``) install Debian's SLURM packages with
apt-get and write /etc/slurm/slurm.conf, so a plain ``python -m pytest`` on someone's machine must
not run them. They run when ``VAMOH_SLURM_TESTS=1`` is set (CI, a throw-away machine, sets it in
``.ci/run``) or with ``python -m pytest --slurm``; otherwise they skip with one line saying so.
"""

from __future__ import annotations

import os

import pytest

try:
    from slurm_cluster import OPT_IN_ENV, OPT_IN_HINT, opted_in
except ImportError:  # tests/ imported as a package
    from tests.slurm_cluster import OPT_IN_ENV, OPT_IN_HINT, opted_in


def pytest_addoption(parser) -> None:
    parser.addoption("--slurm", action="store_true", default=False,
                     help=f"run the real-SLURM tests (same as {OPT_IN_ENV}=1): they apt-get install SLURM and "
                          "write /etc/slurm/slurm.conf (restored afterwards); needs root")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", f"slurm: needs a real SLURM cluster on this machine (opt-in: {OPT_IN_ENV}=1 "
                                       "or --slurm)")
    if config.getoption("--slurm"):
        # the option stands for the variable; the SLURM fixture checks the variable too
        os.environ[OPT_IN_ENV] = "1"


def pytest_runtest_setup(item) -> None:
    # Raised here, before the item's fixtures are set up, and from one place: pytest folds every
    # such skip into one summary line, and the tests still count as collected (exit code 0).
    if item.get_closest_marker("slurm") is not None and not opted_in():
        pytest.skip(OPT_IN_HINT)
