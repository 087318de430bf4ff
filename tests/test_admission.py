"""The accept line and the addresses' standing, without Trio or sockets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kaspa_peer._admission import RANKS, AcceptLine, Standing, address_key


def test_a_clean_address_ranks_first_and_failures_rank_by_powers_of_two() -> None:
    standing = Standing(half_life=60.0)
    assert standing.rank("a", 0.0) == 0
    ranks = []
    for _ in range(8):
        standing.failed("a", 0.0)
        ranks.append(standing.rank("a", 0.0))
    assert ranks == [1, 2, 2, 3, 3, 3, 3, 4]
    assert standing.rank("b", 0.0) == 0


def test_failures_halve_every_half_life() -> None:
    standing = Standing(half_life=10.0)
    for _ in range(8):
        standing.failed("a", 100.0)
    assert standing.rank("a", 100.0) == 4  # 8
    assert standing.rank("a", 110.0) == 3  # 4
    assert standing.rank("a", 120.0) == 2  # 2
    assert standing.rank("a", 130.0) == 1  # 1
    assert standing.rank("a", 140.0) == 1  # 0.5: rounds to one
    assert standing.rank("a", 150.0) == 0  # 0.25: none
    standing.failed("a", 150.0)  # 0.25 + 1
    assert standing.rank("a", 150.0) == 1
    # A clock that reads earlier than the last failure counts no decay, not growth.
    assert standing.rank("a", 0.0) == 1


def test_the_rank_is_capped() -> None:
    standing = Standing()
    for _ in range(100_000):
        standing.failed("a", 0.0)
    assert standing.rank("a", 0.0) == RANKS - 1


def test_standing_is_bounded_forgetting_the_least_recent_failure() -> None:
    standing = Standing(half_life=1e9, limit=3)
    for host in "abc":
        standing.failed(host, 0.0)
    standing.failed("a", 1.0)  # a is now the most recent
    standing.failed("d", 2.0)  # b goes
    assert len(standing) == 3
    assert standing.rank("b", 2.0) == 0
    assert standing.rank("a", 2.0) == 2
    assert standing.rank("c", 2.0) == 1


def test_the_line_serves_the_lowest_rank_first_then_first_come() -> None:
    line: AcceptLine[str] = AcceptLine(10)
    for item, rank in [("x1", 3), ("a1", 0), ("x2", 3), ("b1", 1), ("a2", 0)]:
        assert line.push(item, rank) == []
    assert len(line) == 5
    assert [line.pop() for _ in range(6)] == ["a1", "a2", "b1", "x1", "x2", None]
    assert len(line) == 0


def test_over_its_limit_the_line_closes_the_newest_of_the_worst_rank() -> None:
    line: AcceptLine[str] = AcceptLine(3)
    assert line.push("x1", 2) == []
    assert line.push("x2", 2) == []
    assert line.push("y1", 1) == []
    assert line.push("a1", 0) == ["x2"]
    assert line.push("x3", 2) == ["x3"]  # the newcomer itself is the worst placed
    assert line.push("a2", 0) == ["x1"]
    assert [line.pop() for _ in range(4)] == ["a1", "a2", "y1", None]


def test_room_bounds_the_line_below_its_limit() -> None:
    line: AcceptLine[str] = AcceptLine(10)
    assert line.push("a", 0, room=0) == ["a"]
    assert line.push("a", 0, room=-3) == ["a"]
    assert line.push("a", 1, room=2) == []
    assert line.push("b", 1, room=2) == []
    assert line.push("c", 0, room=1) == ["b", "a"]
    assert line.pop() == "c"


def test_out_of_range_ranks_are_clamped() -> None:
    line: AcceptLine[str] = AcceptLine(5)
    line.push("late", RANKS + 5)
    line.push("early", -1)
    assert [line.pop(), line.pop()] == ["early", "late"]


def test_clear_takes_everything() -> None:
    line: AcceptLine[int] = AcceptLine(10)
    for i in range(6):
        line.push(i, i % 3)
    assert sorted(line.clear()) == list(range(6))
    assert len(line) == 0
    assert line.pop() is None


@settings(deadline=None)
@given(
    st.integers(1, 8),
    st.lists(st.tuples(st.booleans(), st.integers(0, RANKS - 1)), max_size=60),
)
def test_the_line_against_a_sorted_model(limit: int, steps: list[tuple[bool, int]]) -> None:
    """Any mix of pushes and pops: the line holds at most ``limit``, pops the lowest rank
    (first come within it), and closes the newest of the highest rank."""
    line: AcceptLine[int] = AcceptLine(limit)
    model: list[tuple[int, int]] = []  # (rank, arrival)
    for arrival, (push, rank) in enumerate(steps):
        if push:
            model.append((rank, arrival))
            closed = line.push(arrival, rank)
            expected = []
            while len(model) > limit:
                worst = max(model)
                model.remove(worst)
                expected.append(worst[1])
            assert closed == expected
            for other in range(RANKS):
                assert line.has_room_for(other) == (
                    len(model) < limit or any(r > other for r, _ in model)
                )
        else:
            best = min(model) if model else None
            if best is not None:
                model.remove(best)
            assert line.pop() == (best[1] if best else None)
        assert len(line) == len(model) <= limit


@settings(deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, RANKS - 1), st.integers(-2, 6)), max_size=40),
)
def test_room_bounds_the_line_against_a_model(steps: list[tuple[int, int]]) -> None:
    """``push(room=...)``: after each push the line holds at most ``min(limit, room)``,
    the worst placed going first (the newest of a rank)."""
    line: AcceptLine[int] = AcceptLine(5)
    model: list[tuple[int, int]] = []
    for arrival, (rank, room) in enumerate(steps):
        model.append((rank, arrival))
        closed = line.push(arrival, rank, room)
        expected = []
        while len(model) > min(5, max(room, 0)):
            worst = max(model)
            model.remove(worst)
            expected.append(worst[1])
        assert closed == expected
        assert len(line) == len(model)


@pytest.mark.parametrize("half_life", [1.0, 60.0])
def test_the_standing_of_one_address_never_exceeds_its_failures(half_life: float) -> None:
    standing = Standing(half_life=half_life)
    for second in range(50):
        standing.failed("a", float(second))
        assert 1 <= standing.rank("a", float(second)) <= (second + 1).bit_length()


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("127.0.0.2", "127.0.0.2"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::1%eth0"),  # link-local: each neighbour, each link
        ("fe80::1%2", "fe80::1%2"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4-mapped
        ("64:ff9b::192.0.2.7", "192.0.2.7"),  # NAT64's well-known prefix
        ("64:ff9b::198.51.100.1", "198.51.100.1"),
        ("64:ff9b:1:2::c000:207", "64:ff9b:1:2::c000:207"),  # NAT64, local use
        ("::ffff:0:192.0.2.7", "192.0.2.7"),  # SIIT
        ("::192.0.2.7", "::192.0.2.7"),  # IPv4-compatible (deprecated): as it is
        ("::1", "::1"),
        ("<unknown>", "<unknown>"),
        ("not:an:address", "not:an:address"),
    ],
)
def test_an_ipv6_address_is_judged_by_its_64(host: str, key: str) -> None:
    assert address_key(host) == key


def test_the_addresses_of_one_64_share_a_standing() -> None:
    standing = Standing()
    for n in range(4):
        standing.failed(address_key(f"2001:db8::{n:x}:1"), 0.0)
    assert standing.rank(address_key("2001:db8::ffff:ffff:ffff:ffff"), 0.0) == 3
    assert standing.rank(address_key("2001:db8:0:1::1"), 0.0) == 0
