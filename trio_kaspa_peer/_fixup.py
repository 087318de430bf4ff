"""Public names show their public module: ``trio_kaspa_peer.wire.MsgPing``, not ``..._messages``.

The idea of trio's ``fixup_module_metadata``: classes and functions are
defined in private modules and re-exported; setting their ``__module__`` to
the public module makes reprs, tracebacks, pickles and the documentation
name them as users import them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any, ForwardRef

__all__ = ["fixup_module_metadata"]

_TYPE_VARIABLE = re.compile(r"\b[A-Z]\b")
"""A type variable's name (``T``): such annotations stay strings, as written."""


def fixup_module_metadata(
    module_name: str, namespace: dict[str, Any], names: Iterable[str]
) -> None:
    """Set ``__module__`` of the public classes and functions in ``names`` to ``module_name``.

    Only objects defined in the private modules below ``module_name`` are
    touched (``trio_kaspa_peer.wire._tx`` for ``trio_kaspa_peer.wire``):
    re-exports from elsewhere keep theirs.  Nested classes and methods follow
    their class.
    """
    private_prefix = module_name + "._"
    seen: set[int] = set()

    def fix(obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        module = getattr(obj, "__module__", None)
        if not isinstance(module, str) or not module.startswith(private_prefix):
            return
        if isinstance(obj, type):
            _resolve_annotations(obj)
        else:
            _resolve_function_annotations(obj)
        try:
            obj.__module__ = module_name
        except (AttributeError, TypeError):
            return
        if isinstance(obj, type) and not getattr(obj, "_is_protocol", False):
            # Where the source is: the documentation reads attribute docstrings there.  Not
            # on a Protocol: a runtime-checkable one would require the attribute of every
            # class checked against it (a user's resolver would not be a Resolver).
            try:
                type.__setattr__(obj, "__source_module__", module)
            except (AttributeError, TypeError):
                pass
        if isinstance(obj, type):
            for value in obj.__dict__.values():
                if isinstance(value, type) or callable(value):
                    fix(value)

    for name in names:
        obj = namespace.get(name)
        if obj is not None and (isinstance(obj, type) or callable(obj)):
            fix(obj)


def _resolve_annotations(cls: type) -> None:
    """Evaluate a class's own string annotations while its module is still the real one.

    ``typing.get_type_hints`` looks names up in the module ``__module__`` names:
    once that is the public module, ``"Hash | None"`` would no longer resolve.
    An annotation naming something only imported for type checkers stays a string.
    """
    own = _own_annotations(cls)
    if not own:
        return
    namespace = dict(vars(sys.modules[cls.__module__]))
    namespace.update(vars(cls))
    for name, value in own.items():
        if isinstance(value, ForwardRef):  # NamedTuple keeps its strings as these
            value = value.__forward_arg__
        if isinstance(value, str):
            try:
                own[name] = eval(value, namespace)
            except Exception:
                continue


def _own_annotations(cls: type) -> dict[str, Any] | None:
    """The class's own annotations, as a dict to change in place.

    Python 3.14 makes some on demand (PEP 649: a ``NamedTuple``'s, say), with
    nothing in the class's ``__dict__`` until asked: those are asked for and set
    back as a plain dict, which the caller then changes.
    """
    own = cls.__dict__.get("__annotations__")  # noqa: RUF063 - changed in place
    if own is not None or "__annotate_func__" not in cls.__dict__:
        return own
    try:
        own = dict(cls.__annotations__)
        type.__setattr__(cls, "__annotations__", own)
    except Exception:
        return None
    return own


def _resolve_function_annotations(func: Any) -> None:
    """Evaluate a function's (or method's) string annotations in its own module's globals.

    The documentation evaluates them in the module ``__module__`` names, which the fix-up
    makes the public one: ``"Iterable[IPNetwork]"`` would no longer resolve there.  What
    cannot be evaluated (names imported for type checkers only) stays a string.
    """
    own = getattr(func, "__annotations__", None)
    namespace = getattr(func, "__globals__", None)
    if not isinstance(own, dict) or not isinstance(namespace, dict):
        return
    for name, value in own.items():
        if isinstance(value, str) and not _TYPE_VARIABLE.search(value):
            try:
                own[name] = eval(value, namespace)
            except Exception:
                continue
