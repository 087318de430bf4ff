"""Render our messages in the JSON shape of the reference's golden vectors."""

from __future__ import annotations

from typing import Any

from trio_kaspa_peer import wire


def _hash(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).hex()


def _net_address(na: wire.NetAddress) -> dict[str, Any]:
    return {
        "IP": na.ip.hex(),
        "IPString": na.ip_string,
        "Port": na.port,
        "Services": int(na.services),
        "Timestamp": na.timestamp,
    }


def _header(h: wire.BlockHeader) -> dict[str, Any]:
    return {
        "AcceptedIDMerkleRoot": _hash(h.accepted_id_merkle_root),
        "Bits": h.bits,
        "HashMerkleRoot": _hash(h.hash_merkle_root),
        "Nonce": h.nonce,
        "ParentHashes": [_hash(p) for p in h.parent_hashes],
        "ParentHashesCount": len(h.parent_hashes),
        "Timestamp": h.timestamp,
        "UTXOCommitment": _hash(h.utxo_commitment),
        "Version": h.version,
    }


def _tx(tx: wire.MsgTx) -> dict[str, Any]:
    return {
        "Gas": tx.gas,
        "LockTime": tx.lock_time,
        "Payload": None if tx.payload is None else tx.payload.hex(),
        "PayloadHash": _hash(tx.payload_hash),
        "PayloadLen": len(tx.payload or b""),
        "SubnetworkID": tx.subnetwork_id.hex(),
        "TxIn": [
            {
                "PreviousOutpoint": {
                    "Index": i.previous_outpoint.index,
                    "TxID": i.previous_outpoint.tx_id.hex(),
                },
                "Sequence": i.sequence,
                "SignatureScript": i.signature_script.hex(),
                "SignatureScriptLen": len(i.signature_script),
            }
            for i in tx.tx_in
        ],
        "TxInCount": len(tx.tx_in),
        "TxOut": [
            {
                "ScriptPubKey": o.script_pub_key.hex(),
                "ScriptPubKeyLen": len(o.script_pub_key),
                "Value": o.value,
            }
            for o in tx.tx_out
        ],
        "TxOutCount": len(tx.tx_out),
        "Version": tx.version,
    }


def _inv_list(items: Any) -> dict[str, Any]:
    return {
        "InvList": [{"Hash": _hash(i.hash), "Type": int(i.type)} for i in items],
        "InvListCount": len(items),
    }


def to_reference_fields(msg: wire.Message) -> dict[str, Any]:
    """``msg`` as the vectors' ``fields`` describe it."""
    if isinstance(msg, wire.MsgVersion):
        return {
            "AddrMe": _net_address(msg.addr_me),
            "AddrYou": _net_address(msg.addr_you),
            "DisableRelayTx": msg.disable_relay_tx,
            "Nonce": msg.nonce,
            "ProtocolVersion": msg.protocol_version,
            "SelectedTipHash": _hash(msg.selected_tip_hash),
            "Services": int(msg.services),
            "SubnetworkID": _hash(msg.subnetwork_id),
            "Timestamp": msg.timestamp,
            "UserAgent": msg.user_agent,
        }
    if isinstance(msg, (wire.MsgVerAck, wire.MsgFilterClear, wire.MsgGetSelectedTip)):
        return {}
    if isinstance(msg, wire.MsgGetAddr):
        return {
            "IncludeAllSubnetworks": msg.include_all_subnetworks,
            "SubnetworkID": _hash(msg.subnetwork_id),
        }
    if isinstance(msg, wire.MsgAddr):
        return {
            "AddrList": [_net_address(a) for a in msg.addr_list],
            "AddrListCount": len(msg.addr_list),
            "IncludeAllSubnetworks": msg.include_all_subnetworks,
            "SubnetworkID": _hash(msg.subnetwork_id),
        }
    if isinstance(msg, (wire.MsgGetBlockInvs, wire.MsgGetBlockLocator)):
        return {"HighHash": _hash(msg.high_hash), "LowHash": _hash(msg.low_hash)}
    if isinstance(msg, (wire.MsgInv, wire.MsgGetData, wire.MsgNotFound)):
        return _inv_list(msg.inv_list)
    if isinstance(msg, wire.MsgTx):
        return _tx(msg)
    if isinstance(msg, wire.MsgBlock):
        return {
            "Header": _header(msg.header),
            "Transactions": [_tx(t) for t in msg.transactions],
            "TransactionsCount": len(msg.transactions),
        }
    if isinstance(msg, (wire.MsgPing, wire.MsgPong)):
        return {"Nonce": msg.nonce}
    if isinstance(msg, wire.MsgFilterAdd):
        return {"Data": msg.data.hex(), "DataLen": len(msg.data)}
    if isinstance(msg, wire.MsgFilterLoad):
        return {
            "Filter": msg.filter.hex(),
            "FilterLen": len(msg.filter),
            "Flags": int(msg.flags),
            "HashFuncs": msg.hash_funcs,
            "Tweak": msg.tweak,
        }
    if isinstance(msg, wire.MsgMerkleBlock):
        return {
            "Flags": msg.flags.hex(),
            "FlagsLen": len(msg.flags),
            "Hashes": [_hash(h) for h in msg.hashes],
            "HashesCount": len(msg.hashes),
            "Header": _header(msg.header),
            "Transactions": msg.transactions,
        }
    if isinstance(msg, wire.MsgReject):
        return {
            "Cmd": msg.cmd,
            "Code": int(msg.code),
            "Hash": _hash(msg.hash),
            "Reason": msg.reason,
        }
    if isinstance(msg, wire.MsgFeeFilter):
        return {"MinFee": msg.min_fee}
    if isinstance(msg, wire.MsgBlockLocator):
        return {
            "BlockLocatorHashes": [_hash(h) for h in msg.block_locator_hashes],
            "BlockLocatorHashesCount": len(msg.block_locator_hashes),
        }
    if isinstance(msg, wire.MsgSelectedTip):
        return {"SelectedTipHash": _hash(msg.selected_tip_hash)}
    raise TypeError(f"no reference rendering for {type(msg).__name__}")


def _opt_hash(hex_text: str | None) -> wire.Hash | None:
    return None if hex_text is None else wire.Hash.fromhex(hex_text)


def _b(hex_text: str | None) -> bytes | None:
    return None if hex_text is None else bytes.fromhex(hex_text)


def _na(d: dict[str, Any]) -> wire.NetAddress:
    return wire.NetAddress(bytes.fromhex(d["IP"]), d["Port"], d["Services"], d["Timestamp"])


def _hdr(d: dict[str, Any]) -> wire.BlockHeader:
    return wire.BlockHeader(
        version=d["Version"],
        parent_hashes=[wire.Hash.fromhex(p) for p in d["ParentHashes"]],
        hash_merkle_root=wire.Hash.fromhex(d["HashMerkleRoot"]),
        accepted_id_merkle_root=wire.Hash.fromhex(d["AcceptedIDMerkleRoot"]),
        utxo_commitment=wire.Hash.fromhex(d["UTXOCommitment"]),
        timestamp=d["Timestamp"],
        bits=d["Bits"],
        nonce=d["Nonce"],
    )


def _mk_tx(d: dict[str, Any]) -> wire.MsgTx:
    return wire.MsgTx(
        version=d["Version"],
        tx_in=[
            wire.TxIn(
                wire.Outpoint(
                    wire.TxID.fromhex(i["PreviousOutpoint"]["TxID"]),
                    i["PreviousOutpoint"]["Index"],
                ),
                bytes.fromhex(i["SignatureScript"]),
                i["Sequence"],
            )
            for i in d["TxIn"]
        ],
        tx_out=[wire.TxOut(o["Value"], bytes.fromhex(o["ScriptPubKey"])) for o in d["TxOut"]],
        lock_time=d["LockTime"],
        subnetwork_id=wire.SubnetworkID.fromhex(d["SubnetworkID"]),
        gas=d["Gas"],
        payload_hash=_opt_hash(d["PayloadHash"]),
        payload=_b(d["Payload"]),
    )


def from_reference_fields(command: str, d: dict[str, Any]) -> wire.Message:
    """Build a message from a vector's ``fields``/``input_fields`` description.

    Every field is passed by keyword, so this also checks that our field names
    are the reference's, in snake case.
    """
    sub = _b(d.get("SubnetworkID"))
    if command == "version":
        return wire.MsgVersion(
            protocol_version=d["ProtocolVersion"],
            services=d["Services"],
            timestamp=d["Timestamp"],
            addr_you=_na(d["AddrYou"]),
            addr_me=_na(d["AddrMe"]),
            nonce=d["Nonce"],
            user_agent=d["UserAgent"],
            selected_tip_hash=wire.Hash.fromhex(d["SelectedTipHash"]),
            disable_relay_tx=d["DisableRelayTx"],
            subnetwork_id=None if sub is None else wire.SubnetworkID(sub),
        )
    if command in ("verack", "filterclear", "getseltip"):
        cls = wire.DEFAULT_REGISTRY.get(command)
        assert cls is not None
        return cls()
    if command == "getaddr":
        return wire.MsgGetAddr(
            include_all_subnetworks=d["IncludeAllSubnetworks"],
            subnetwork_id=None if sub is None else wire.SubnetworkID(sub),
        )
    if command == "addr":
        return wire.MsgAddr(
            addr_list=[_na(a) for a in d["AddrList"]],
            include_all_subnetworks=d["IncludeAllSubnetworks"],
            subnetwork_id=None if sub is None else wire.SubnetworkID(sub),
        )
    if command == "getblockinvs":
        return wire.MsgGetBlockInvs(
            low_hash=wire.Hash.fromhex(d["LowHash"]), high_hash=wire.Hash.fromhex(d["HighHash"])
        )
    if command == "getlocator":
        return wire.MsgGetBlockLocator(
            high_hash=wire.Hash.fromhex(d["HighHash"]), low_hash=wire.Hash.fromhex(d["LowHash"])
        )
    if command in ("inv", "getdata", "notfound"):
        cls = {"inv": wire.MsgInv, "getdata": wire.MsgGetData, "notfound": wire.MsgNotFound}[
            command
        ]
        return cls(
            inv_list=[wire.InvVect(i["Type"], wire.Hash.fromhex(i["Hash"])) for i in d["InvList"]]
        )
    if command == "selectedtip":
        return wire.MsgSelectedTip(selected_tip_hash=wire.Hash.fromhex(d["SelectedTipHash"]))
    if command in ("ping", "pong"):
        return (wire.MsgPing if command == "ping" else wire.MsgPong)(nonce=d["Nonce"])
    if command == "feefilter":
        return wire.MsgFeeFilter(min_fee=d["MinFee"])
    if command == "filteradd":
        return wire.MsgFilterAdd(data=bytes.fromhex(d["Data"]))
    if command == "filterload":
        return wire.MsgFilterLoad(
            filter=bytes.fromhex(d["Filter"]),
            hash_funcs=d["HashFuncs"],
            tweak=d["Tweak"],
            flags=d["Flags"],
        )
    if command == "merkleblock":
        return wire.MsgMerkleBlock(
            header=_hdr(d["Header"]),
            transactions=d["Transactions"],
            hashes=[wire.Hash.fromhex(h) for h in d["Hashes"]],
            flags=bytes.fromhex(d["Flags"]),
        )
    if command == "reject":
        return wire.MsgReject(
            cmd=d["Cmd"], code=d["Code"], reason=d["Reason"], hash=_opt_hash(d["Hash"])
        )
    if command == "locator":
        return wire.MsgBlockLocator(
            block_locator_hashes=[wire.Hash.fromhex(h) for h in d["BlockLocatorHashes"]]
        )
    if command == "tx":
        return _mk_tx(d)
    if command == "block":
        return wire.MsgBlock(
            header=_hdr(d["Header"]), transactions=[_mk_tx(t) for t in d["Transactions"]]
        )
    raise TypeError(f"no builder for {command}")
