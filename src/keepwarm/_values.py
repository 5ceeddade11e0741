# Read-only value classes without ``dataclasses``.
#
# ``import dataclasses`` pulls in ``inspect``, ``ast`` and ``dis``, and each
# ``@dataclass`` compiles its ``__init__``, ``__repr__``, ``__eq__`` and ``__hash__`` from
# source when the module is imported: ~6 ms of ``import keepwarm`` for seven small classes
# (issue 16). :class:`Frozen` gives a class with a hand-written ``__init__`` what
# ``@dataclass(frozen=True)`` gave it: the repr, equality and hash over its fields in
# order, read-only fields, pickling and copying through the constructor, ``__match_args__``
# and ``__replace__`` (``copy.replace`` on Python 3.13+); :class:`Mutable` what a plain
# ``@dataclass`` gave the two whose fields change after they are made.
#
# An assignment to a field still raises ``dataclasses.FrozenInstanceError`` (an
# ``AttributeError``), so code catching either keeps working; ``dataclasses`` is imported
# then, on that error path only.

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

__all__ = ["Fields", "Frozen", "Mutable", "field_repr", "fields_of"]

_F = TypeVar("_F", bound="Fields")


def _read_only(value: object, what: str) -> AttributeError:
    import dataclasses  # on demand: ~5 ms with inspect, ast and dis, for an error

    return dataclasses.FrozenInstanceError(f"{what}: {type(value).__name__} is read-only")


def field_repr(value: Any, fields: tuple[str, ...]) -> str:
    # ``Name(a=1, b='x')``: a dataclass' repr of ``fields``.
    shown = ", ".join(f"{name}={getattr(value, name)!r}" for name in fields)
    return f"{type(value).__qualname__}({shown})"


def fields_of(value: Fields) -> dict[str, Any]:
    # A value's fields by name, in constructor order (``dataclasses.asdict`` without the
    # deep copy).
    return {name: getattr(value, name) for name in value.__match_args__}


class Fields:
    # What a value class built on its ``__match_args__`` (its fields, in constructor
    # order) has whether or not it is read-only: the repr, equality over the fields, and
    # ``__replace__`` (``dataclasses.replace``; ``copy.replace`` on Python 3.13+).

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __repr__(self) -> str:
        return field_repr(self, self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Fields)
        return self._values() == other._values()

    def __replace__(self: _F, **changes: Any) -> _F:
        # A copy with some fields changed, built and checked by the constructor.
        values = fields_of(self)
        unknown = changes.keys() - values.keys()
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values.update(changes)
        return self.__class__(**values)


class Mutable(Fields):
    # Base of a value class whose fields change after it is made: unhashable, as a
    # mutable dataclass is.

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]


class Frozen(Fields):
    # Base of a read-only value class; a subclass lists its fields in
    # ``__match_args__`` (constructor order) and sets them in ``__init__`` through
    # ``object.__setattr__``.

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> None:
        raise _read_only(self, f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise _read_only(self, f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through the constructor, with the fields in order (pickle, copy).
        return (self.__class__, self._values())
