"""The one place rule codes are assigned.

Families (codes are stable forever: a retired rule keeps its code, marked
deprecated, and the number is never reused):

* ``NCS0xx`` the linter itself (suppression comments)
* ``NCS1xx`` network inputs
* ``NCS2xx`` layer types and fields the SDK cannot take
* ``NCS3xx`` convolution, pooling and deconvolution parameters
* ``NCS4xx`` other layers' parameters and wiring
* ``NCS5xx`` device resources (graph size, buffers, scratch memory)
* ``NCS9xx`` files caffe2ncs (and Caffe) cannot make sense of
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from .base import Rule, validate_rule_class

#: Rule modules, in the order their rules run (and are listed).
MODULES = (
    "caffe2ncs.rules.suppression_rules",
    "caffe2ncs.rules.inputs",
    "caffe2ncs.rules.layer_types",
    "caffe2ncs.rules.schema_fields",
    "caffe2ncs.rules.convolution",
    "caffe2ncs.rules.pooling",
    "caffe2ncs.rules.concat",
    "caffe2ncs.rules.eltwise",
    "caffe2ncs.rules.misc_layers",
    "caffe2ncs.rules.in_place",
    "caffe2ncs.rules.outputs",
    "caffe2ncs.rules.resources",
    "caffe2ncs.rules.structure",
)

_REGISTERED: list[type[Rule]] = []


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator used by rule modules."""
    _REGISTERED.append(cls)
    return cls


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class, sorted by code; validates metadata and code uniqueness."""
    for module in MODULES:
        importlib.import_module(module)
    seen: dict[str, type[Rule]] = {}
    names: dict[str, type[Rule]] = {}
    for cls in _REGISTERED:
        validate_rule_class(cls)
        if cls.code in seen and seen[cls.code] is not cls:
            raise TypeError(f"rule code {cls.code} is used by {seen[cls.code].__name__} and {cls.__name__}")
        if cls.name in names and names[cls.name] is not cls:
            raise TypeError(f"rule name {cls.name} is used twice")
        seen[cls.code] = cls
        names[cls.name] = cls
    return tuple(sorted(seen.values(), key=lambda c: c.code))


def by_code() -> dict[str, type[Rule]]:
    return {cls.code: cls for cls in all_rules()}


def codes_and_names() -> dict[str, str]:
    return {cls.code: cls.name for cls in all_rules()}


@lru_cache(maxsize=1)
def default_codes() -> frozenset[str]:
    return frozenset(cls.code for cls in all_rules() if cls.default_enabled)


def lookup(code_or_name: str) -> type[Rule] | None:
    key = code_or_name.strip()
    for cls in all_rules():
        if cls.code == key.upper() or cls.name == key:
            return cls
    return None
