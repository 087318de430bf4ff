"""Transaction ids against rusty-kaspa v2.0.1's own code.

The ``kaspa`` 2.0.1 wheel on PyPI (rusty-kaspa's Python SDK) is built from
rusty-kaspa's ``v2.0.1`` commit; its ``Transaction.id`` is that commit's
``hashing::tx::id``.  The ``test`` extra installs it where it has a wheel;
elsewhere these tests are skipped.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kaspa_peer import protowire

if (
    os.environ.get("CI") == "true"
    and sys.platform == "linux"
    and platform.machine() in ("x86_64", "aarch64")
    and sys.version_info < (3, 14)  # its Requires-Python <=3.14 refuses 3.14.1 on
    and sys.implementation.name == "cpython"
    and importlib.util.find_spec("kaspa") is None
):
    # CI installs the test extra on such a machine: absent there, it did not install.
    pytest.fail("the kaspa wheel (rusty-kaspa's SDK) is not installed", pytrace=False)
kaspa: Any = pytest.importorskip("kaspa", reason="rusty-kaspa's SDK (the kaspa wheel) is absent")
pytest.importorskip("blake3", reason="version-1 ids need blake3")

SDK_VERSION = "2.0.1"

_SUBNETWORKS = [
    bytes(20),
    protowire.COINBASE_SUBNETWORK_ID,
    bytes([2]) + bytes(19),
    bytes(range(1, 21)),
]
_hash = st.binary(min_size=32, max_size=32)
_script = st.one_of(st.just(b""), st.binary(max_size=40), st.binary(min_size=250, max_size=300))
_u64 = st.one_of(st.sampled_from([0, 1, 2**64 - 1]), st.integers(0, 2**64 - 1))

_input = st.fixed_dictionaries(
    {
        "txid": _hash,
        "index": st.one_of(st.sampled_from([0, 0xFFFFFFFF]), st.integers(0, 2**32 - 1)),
        "script": _script,
        "sequence": _u64,
        "sigops": st.integers(0, 255),
        "budget": st.integers(0, 0xFFFF),
    }
)
_output = st.fixed_dictionaries(
    {
        "value": _u64,
        "spk_version": st.sampled_from([0, 1, 0xFFFF]),
        "script": _script,
        "covenant": st.none() | st.tuples(st.integers(0, 0xFFFF), _hash),
    }
)
_transaction = st.fixed_dictionaries(
    {
        "version": st.sampled_from([0, 1, 2, 0xFFFF]),
        "inputs": st.lists(_input, max_size=3),
        "outputs": st.lists(_output, max_size=3),
        "lock_time": _u64,
        "subnetwork": st.sampled_from(_SUBNETWORKS),
        "gas": _u64,
        "payload": st.one_of(st.just(b""), st.binary(max_size=300)),
        "mass": _u64,
    }
)


def _theirs(tx: dict[str, Any]) -> str:
    inputs = [
        kaspa.TransactionInput(
            kaspa.TransactionOutpoint(kaspa.Hash(each["txid"].hex()), each["index"]),
            each["script"].hex(),
            each["sequence"],
            each["sigops"],
            each["budget"],
        )
        for each in tx["inputs"]
    ]
    outputs = [
        kaspa.TransactionOutput(
            each["value"],
            kaspa.ScriptPublicKey(each["spk_version"], each["script"].hex()),
            None
            if each["covenant"] is None
            else kaspa.CovenantBinding(each["covenant"][0], kaspa.Hash(each["covenant"][1].hex())),
        )
        for each in tx["outputs"]
    ]
    made = kaspa.Transaction(
        tx["version"],
        inputs,
        outputs,
        tx["lock_time"],
        tx["subnetwork"].hex(),
        tx["gas"],
        tx["payload"].hex(),
        tx["mass"],
    )
    txid: str = made.id
    return txid


def _ours(tx: dict[str, Any]) -> protowire.TransactionMessage:
    later = tx["version"] >= 1  # a compute budget where version 0 has a sigop count
    return protowire.TransactionMessage(
        version=tx["version"],
        inputs=[
            protowire.TransactionInput(
                previous_outpoint=protowire.Outpoint(
                    transaction_id=protowire.TransactionId(bytes=each["txid"]),
                    index=each["index"],
                ),
                signature_script=each["script"],
                sequence=each["sequence"],
                compute_commit=each["budget"] if later else each["sigops"],
            )
            for each in tx["inputs"]
        ],
        outputs=[
            protowire.TransactionOutput(
                value=each["value"],
                script_public_key=protowire.ScriptPublicKey(
                    version=each["spk_version"], script=each["script"]
                ),
                covenant=None
                if each["covenant"] is None
                else protowire.CovenantBinding(
                    authorizing_input=each["covenant"][0],
                    covenant_id=protowire.Hash(bytes=each["covenant"][1]),
                ),
            )
            for each in tx["outputs"]
        ],
        lock_time=tx["lock_time"],
        subnetwork_id=protowire.SubnetworkId(bytes=tx["subnetwork"]),
        gas=tx["gas"],
        payload=tx["payload"],
        storage_mass=tx["mass"],
    )


def test_the_sdk_is_rusty_kaspa_v2_0_1() -> None:
    assert importlib.metadata.version("kaspa") == SDK_VERSION


@settings(max_examples=400, deadline=None)
@given(_transaction, st.sampled_from([7, 8, 9, 10]))
def test_transaction_ids_are_rusty_kaspas(tx: dict[str, Any], version: int) -> None:
    # A version-0 transaction's covenants stay out of both ids.
    ours = protowire.transaction_id(_ours(tx), protocol_version=version)
    assert ours.hex() == _theirs(tx)


def test_a_coinbases_id_leaves_its_scripts_out_as_rusty_kaspa_does() -> None:
    tx = {
        "version": 0,
        "inputs": [
            {
                "txid": b"\x11" * 32,
                "index": 0xFFFFFFFF,
                "script": script,
                "sequence": 0,
                "sigops": 1,
                "budget": 0,
            }
            for script in (b"\x01\x02", b"\x03")
        ],
        "outputs": [],
        "lock_time": 0,
        "subnetwork": protowire.COINBASE_SUBNETWORK_ID,
        "gas": 0,
        "payload": b"\x09" + bytes(18),
        "mass": 0,
    }
    ours = _ours(tx)
    assert protowire.transaction_id(ours, protocol_version=10).hex() == _theirs(tx)
    # kaspad v0.12.20 (the default) commits to a coinbase's scripts.
    assert protowire.transaction_id(ours).hex() != _theirs(tx)
