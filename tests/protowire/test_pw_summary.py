"""summarize(): one short line for any payload, from the descriptors."""

from __future__ import annotations

import pytest

from trio_kaspa_peer import protowire


def test_summaries() -> None:
    addresses = protowire.AddressesMessage(
        address_list=[protowire.NetAddress(ip=bytes(4), port=16111)] * 1000
    )
    assert protowire.summarize("addresses", addresses) == "addresses: 1000 address_list"
    assert protowire.summarize("ping", protowire.PingMessage(nonce=42)) == "ping: nonce=42"
    assert protowire.summarize("verack", protowire.VerackMessage()) == "verack"
    assert protowire.summarize("ping", protowire.PingMessage()) == "ping"
    inv = protowire.InvRelayBlockMessage(hash=protowire.Hash(bytes=bytes(range(32))))
    assert protowire.summarize("inv_relay_block", inv) == (
        "inv_relay_block: hash=" + bytes(range(32)).hex()
    )
    block = protowire.BlockMessage(
        header=protowire.BlockHeader(version=1), transactions=[protowire.TransactionMessage()] * 3
    )
    assert protowire.summarize("ibd_block", block) == "ibd_block: header={...} 3 transactions"


def test_version_summary_is_short_and_shows_the_flat_address() -> None:
    version = protowire.VersionMessage(
        protocol_version=10,
        user_agent="/kaspad:2.0.1/" + "x" * 500,
        id=bytes(16),
        network="kaspa-mainnet",
        address=protowire.NetAddress(ip=bytes((192, 0, 2, 1)), port=16111),
        disable_relay_tx=True,
    )
    text = protowire.summarize("version", version)
    assert text.startswith("version: protocol_version=10 address={ip=c0000201 port=16111}")
    assert "id=00000000000000000000000000000000" in text
    assert "user_agent='/kaspad:2.0.1/xxx" in text
    assert "..." in text
    assert "disable_relay_tx=True network='kaspa-mainnet'" in text
    assert len(text) < 250


def test_long_bytes_show_their_size() -> None:
    metadata = protowire.SmtMetadataMessage(data=bytes(96), active_lanes_count=7)
    assert protowire.summarize("smt_metadata", metadata) == (
        "smt_metadata: data=<96 bytes> active_lanes_count=7"
    )


@pytest.mark.parametrize("info", protowire.PAYLOADS, ids=lambda info: info.name)
def test_every_payload_has_a_summary(info: protowire.PayloadInfo) -> None:
    assert protowire.summarize(info.name, info.cls()).startswith(info.name)
