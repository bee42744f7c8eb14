"""The lazy model names of a package: :func:`models_getattr` builds the module
``__getattr__`` (PEP 562) of ``chat_tui.wire`` and of ``chat_tui.api``, which name the
pydantic models of :mod:`chat_tui.wire.models` without importing pydantic until a model
is first used (docs/architecture.md: the app's first frame loads no pydantic)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def models_getattr(package: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` (its dotted name, for the error): a name in
    ``names`` is the class of that name in :mod:`chat_tui.wire.models`, imported on the
    first use.

    The returned function raises AttributeError for any other name, as a module does.
    """
    known = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name in known:
            from chat_tui.wire import models

            return getattr(models, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    __getattr__.__doc__ = (f"Load the wire model ``name`` of ``{package}`` on first use "
                           "(:mod:`chat_tui.wire.models`); AttributeError for any other name.")
    return __getattr__
