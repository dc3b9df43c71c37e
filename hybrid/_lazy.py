"""Names of a package that load on first use (PEP 562), so that importing the package
imports none of its heavy modules until one of them is asked for."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_names(
    package: str, homes: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: each name of ``homes`` comes from
    the module it maps to (absolute, or relative to ``package`` with a leading dot); any other
    name is tried as a submodule (``package.name``)."""

    def __getattr__(name: str) -> Any:
        if name in homes:
            return getattr(import_module(homes[name], package), name)
        try:
            return import_module(f"{package}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{package}.{name}":
                raise  # the submodule exists but needs a module that is missing
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    def __dir__() -> list[str]:
        return sorted({*vars(import_module(package)), *homes})

    return __getattr__, __dir__
