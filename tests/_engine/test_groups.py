"""What travels through a peer's nursery untouched, and what is raised as itself."""

from __future__ import annotations

import trio

from trio_kaspa_peer._engine._groups import is_passthrough, reraise_group


def _cancelled() -> trio.Cancelled:
    # Trio makes Cancelled itself; a test needs one to sort, not to raise.
    return trio.Cancelled._create()


def test_cancelled_alone_or_in_groups_passes_through() -> None:
    assert is_passthrough(_cancelled())
    assert is_passthrough(GeneratorExit())
    # A nursery cancelled from outside raises its Cancelled in a group: still a
    # cancellation, for the enclosing scope to catch, never an error of the peer's.
    inner = BaseExceptionGroup("inner", [_cancelled(), _cancelled()])
    assert is_passthrough(BaseExceptionGroup("outer", [_cancelled(), inner]))
    assert not is_passthrough(ValueError("x"))
    assert not is_passthrough(BaseExceptionGroup("mixed", [_cancelled(), ValueError("x")]))


def test_a_lone_error_in_a_group_is_raised_bare() -> None:
    error = KeyError("k")
    assert reraise_group(BaseExceptionGroup("g", [_cancelled(), error])) is error
    only_cancelled = BaseExceptionGroup("g", [_cancelled()])
    assert reraise_group(only_cancelled) is only_cancelled
    two = BaseExceptionGroup("g", [KeyError("a"), KeyError("b")])
    assert reraise_group(two) is two
