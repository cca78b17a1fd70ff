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
    """A keyword-only constructor for the frozen dataclass `cls` that equals `cls(**fields)`.

    Generated as dataclasses generate __init__ (its parameters are the fields, so Python's own argument
    handling refuses a missing or unknown field), with one __dict__ update as its body."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__slots__") or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: only a dataclass without slots or __post_init__ can be built this way")
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):
        raise TypeError(f"{cls.__name__}: a field with init=False cannot be built this way")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_MISSING": dataclasses.MISSING}
    params, items = [], []
    for f in fields:  # field names are identifiers (dataclasses checks); the values stay in `namespace`
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            items.append(f"{f.name!r}: {f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            items.append(f"{f.name!r}: _factory_{f.name}() if {f.name} is _MISSING else {f.name}")
        else:
            params.append(f.name)
            items.append(f"{f.name!r}: {f.name}")
    source = (f"def make_{cls.__name__}(*, {', '.join(params)}):\n"
              f"    obj = _new(_cls)\n"
              f"    obj.__dict__.update({{{', '.join(items)}}})\n"
              f"    return obj\n")
    exec(source, namespace)  # noqa: S102 - built from field names only, as dataclasses builds __init__
    make: Callable[..., T] = namespace[f"make_{cls.__name__}"]
    return make
