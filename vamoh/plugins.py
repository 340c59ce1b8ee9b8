"""Plugins: modules that add datasets or models to the registries, named by the run config's ``plugins``.

A dataset module registers itself with ``vamoh.data.register_dataset`` and a model class with
``vamoh.interface.register_model`` when the module is imported; a run config lists such modules under ``plugins``, and
every process that reads the config (Snakemake's, each job's, ``vamoh check-config``) imports them before it checks a
single name. Adding a dataset or a baseline is then two files: its module, and the config that names it.
"""

from __future__ import annotations

import importlib
import re

from .checks import ConfigError

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def load_plugins(modules: list[str] | tuple[str, ...]) -> None:
    """Import every module of ``modules`` (dotted names on the Python path); one that is not found, or that fails while
    registering, is a ``ConfigError`` naming it."""
    for name in modules:
        if not isinstance(name, str) or not _MODULE.match(name):
            raise ConfigError(f"plugins: {name!r} is not a module name (expected a dotted Python name such as 'mylab.toy_data')")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is not None and name.startswith(err.name):
                raise ConfigError(f"plugins: module {name!r} was not found on the Python path (put its folder on PYTHONPATH "
                                  f"or install it)") from None
            raise
        except ValueError as err:  # a registration refused (a name registered twice, a module without its functions)
            raise ConfigError(f"plugins: module {name!r} could not register: {err}") from None
