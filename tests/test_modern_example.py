"""docs/examples/modern_addresses.py runs against a node (our own, on 127.0.0.1)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest
import trio

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig
from trio_kaspa_peer import protowire as pw

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "modern_addresses.py"


async def test_modern_addresses_example(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("modern_addresses", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    node = PeerConfig(
        net="devnet",
        user_agent_name="node",
        user_agent_version="9",
        address_source=lambda: [
            ("192.0.2.1", 16611),
            ("2001:db8::1", 16611),
            # kaspad's form of an IPv4 address: 16 bytes, IPv4-mapped
            pw.NetAddress(ip=bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 2]), port=16611),
        ],
    )

    async def handler(peer: tkp.Peer) -> None:
        async for _ in peer.messages():
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), handler, 0, node
        )
        port = listeners[0].socket.getsockname()[1]
        await example.main("127.0.0.1", port, "devnet")
        nursery.cancel_scope.cancel()
    out = capsys.readouterr().out
    assert "node: /trio-kaspa-peer:" in out
    assert "/node:9/ protocol 10" in out
    assert "192.0.2.1:16611" in out
    assert "[2001:db8::1]:16611" in out
    assert "192.0.2.2:16611" in out
    assert "3 addresses" in out
    assert "ping:" in out
