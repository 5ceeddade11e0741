"""Read-only value classes without ``dataclasses``.

``import dataclasses`` pulls in ``inspect``, ``ast`` and ``dis``, and each
``@dataclass`` compiles its ``__init__``, ``__repr__``, ``__eq__`` and ``__hash__`` from
source when the module is imported: ~6 ms of ``import keepwarm`` for seven small classes
(issue 16). :class:`Frozen` gives a class with a hand-written ``__init__`` what
``@dataclass(frozen=True)`` gave it: the repr, equality and hash over its fields in
order, read-only fields, pickling and copying through the constructor, ``__match_args__``
and ``__replace__`` (``copy.replace`` on Python 3.13+).

An assignment to a field still raises ``dataclasses.FrozenInstanceError`` (an
``AttributeError``), so code catching either keeps working; ``dataclasses`` is imported
then, on that error path only.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

__all__ = ["Frozen", "field_repr"]

_F = TypeVar("_F", bound="Frozen")


def _read_only(value: object, what: str) -> AttributeError:
    import dataclasses  # on demand: ~5 ms with inspect, ast and dis, for an error

    return dataclasses.FrozenInstanceError(f"{what}: {type(value).__name__} is read-only")


def field_repr(value: Any, fields: tuple[str, ...]) -> str:
    """``Name(a=1, b='x')``: a dataclass' repr of ``fields``."""
    shown = ", ".join(f"{name}={getattr(value, name)!r}" for name in fields)
    return f"{type(value).__qualname__}({shown})"


class Frozen:
    """Base of a read-only value class; a subclass lists its fields in
    ``__match_args__`` (constructor order) and sets them in ``__init__`` through
    ``object.__setattr__``."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __repr__(self) -> str:
        return field_repr(self, self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Frozen)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> None:
        raise _read_only(self, f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise _read_only(self, f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through the constructor, with the fields in order (pickle, copy).
        return (self.__class__, self._values())

    def __replace__(self: _F, **changes: Any) -> _F:
        """A copy with some fields changed (``dataclasses.replace``), built and checked
        by the constructor."""
        values = dict(zip(self.__match_args__, self._values(), strict=True))
        unknown = changes.keys() - values.keys()
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values.update(changes)
        return self.__class__(**values)
