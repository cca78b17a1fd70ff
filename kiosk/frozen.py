"""Building the scan path's frozen dataclasses (Credential, Card, Customer, Decision) without their __init__.

A frozen dataclass's generated __init__ sets each field through object.__setattr__, one call per field:
for the four objects a card scan builds (5 + 8 + 13 + 26 fields) that was ~5 µs of the ~15 µs of Python
around the snapshot's SQL read (issue 15). `maker(cls)` fills the instance's __dict__ in one update
instead: the same fields, defaults, default factories, equality, hash and repr, and it refuses a class
this is not safe for (slots, __post_init__, init=False fields). Keyword arguments only; an unknown or
missing field raises TypeError as the real constructor would (tests/kiosk/test_frozen.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    """A keyword-only constructor for the frozen dataclass `cls` that equals `cls(**fields)`."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__slots__") or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: only a dataclass without slots or __post_init__ can be built this way")
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):
        raise TypeError(f"{cls.__name__}: a field with init=False cannot be built this way")
    names = frozenset(f.name for f in fields)
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    factories = tuple((f.name, f.default_factory) for f in fields if f.default_factory is not dataclasses.MISSING)
    required = names - defaults.keys() - {name for name, _ in factories}
    new = object.__new__

    def make(**values: Any) -> T:
        if not required <= values.keys() or not values.keys() <= names:
            missing, unknown = sorted(required - values.keys()), sorted(values.keys() - names)
            raise TypeError(f"{cls.__name__}: missing {missing}, unknown {unknown}")
        obj = new(cls)
        state = obj.__dict__
        state.update(defaults)
        for name, factory in factories:
            state[name] = factory()
        state.update(values)
        return obj

    make.__name__ = f"make_{cls.__name__}"
    return make
