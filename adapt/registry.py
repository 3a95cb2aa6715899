"""One registry mechanism for everything chosen by name: methods, validators, backbones, benchmarks
and search-space kinds.

A :class:`Registry` maps names (and optional aliases) to objects. It reads like a read-only dict
(``name in reg``, ``reg[name]``, ``reg.items()``), registers with a decorator or :meth:`Registry.add`,
and answers an unknown name with an error that lists what is available. It imports nothing from the
rest of the package, so any layer may use it.

>>> colours = Registry("colour")
>>> @colours.register("red", "rouge")
... def red() -> str:
...     return "#f00"
>>> colours.get("rouge")()
'#f00'
>>> try:
...     colours.get("blue")
... except ValueError as error:
...     print(error)
unknown colour 'blue'; available: red, rouge (= red)
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")


class UnknownNameError(ValueError, KeyError):
    """A name nothing is registered under (a ValueError for callers, a KeyError for ``Mapping``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Mapping[str, T], Generic[T]):
    """Named objects of one kind (``kind`` names them in error messages).

    Parameters
    ----------
    kind : what the entries are, for messages ("method", "validator", "backbone kind", ...).
    case_sensitive : when False (the default), names and aliases are matched in lower case.
    """

    def __init__(self, kind: str, *, case_sensitive: bool = False) -> None:
        self.kind = kind
        self.case_sensitive = case_sensitive
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def _key(self, name: str) -> str:
        return name if self.case_sensitive else name.lower()

    def add(self, name: str, entry: U, *aliases: str) -> U:
        """Register ``entry`` under ``name`` and ``aliases``; a name already taken is an error."""
        for key in map(self._key, (name, *aliases)):
            if key in self._entries or key in self._aliases:
                raise ValueError(f"{self.kind} name {key!r} is already registered")
        self._entries[self._key(name)] = entry
        for alias in aliases:
            self._aliases[self._key(alias)] = self._key(name)
        return entry

    def remove(self, name: str) -> T:
        """Unregister ``name`` and its aliases (for tests and plugins that clean up); returns the entry."""
        key = self.canonical(name)
        self._aliases = {alias: target for alias, target in self._aliases.items() if target != key}
        return self._entries.pop(key)

    def register(self, name: str, *aliases: str) -> Callable[[U], U]:
        """Decorator form of :meth:`add`: ``@registry.register("name")``."""

        def decorate(entry: U) -> U:
            return self.add(name, entry, *aliases)

        return decorate

    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` (itself or the name an alias points to)."""
        key = self._key(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; available: {self.describe()}")
        return key

    def get(self, name: str) -> T:
        """The entry registered under ``name`` or one of its aliases; unknown names list the valid ones."""
        return self._entries[self.canonical(name)]

    def aliases(self) -> dict[str, str]:
        """Alias -> registered name."""
        return dict(self._aliases)

    def names(self) -> list[str]:
        """The registered names (aliases excluded), sorted."""
        return sorted(self._entries)

    def describe(self) -> str:
        """The valid names for a message: registered names, then aliases with what they stand for."""
        aliases = [f"{alias} (= {name})" for alias, name in sorted(self._aliases.items())]
        return ", ".join(self.names() + aliases)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self._key(name)
        return key in self._entries or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


def import_submodules(package: str, path: Iterable[str], *, skip: Collection[str] = ()) -> list[str]:
    """Import every module of a package (``import_submodules(__name__, __path__)`` in its
    ``__init__``), so that a new file that registers itself needs no import line anywhere else.
    Returns the modules' names, sorted; ``skip`` names modules to leave alone."""
    names = sorted(info.name for info in pkgutil.iter_modules(list(path)) if info.name not in skip)
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
