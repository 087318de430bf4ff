"""The real ``kaspa-peer`` console script, run as a subprocess against loopback nodes."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_kaspa_peer import (
    HandshakeError,
    ListenError,
    PeerConfig,
    __version__,
    open_tcp_peer,
    wire,
)
from trio_kaspa_peer import _cli as cli
from trio_kaspa_peer import protowire as pw
from trio_kaspa_peer._cli import _listen as listen_module
from trio_kaspa_peer.crawl import CrawlConfig, NodeAddress, NodeStatus, NodeStore, probe
from trio_kaspa_peer.testing import NodeKind, default_mix, open_simulated_network

SCRIPT = Path(sys.executable).with_name("kaspa-peer")
V1 = ["--protocol", "1", "--net", "simnet"]
FAST = ["--connect-timeout", "0.5", "--handshake-timeout", "1", "--step-timeout", "0.5"]
COMMANDS = ("demo", "probe", "crawl", "watch", "listen")

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason=f"no console script at {SCRIPT}")


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env.update(extra)
    return env


def run(
    *args: str, columns: int | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = _env() if columns is None else _env(COLUMNS=str(columns))
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


async def listening_on(process: trio.Process) -> tuple[str, str, bytes]:
    """The host and port of ``listen --json``'s first line, and what it has printed."""
    assert process.stdout is not None
    buffer = b""
    with trio.fail_after(20):
        while b"\n" not in buffer:
            buffer += await process.stdout.receive_some(4096)
    first = json.loads(buffer.split(b"\n")[0])
    assert first["event"] == "listening"
    host, port = first["address"].rsplit(":", 1)
    return host, port, buffer


@asynccontextmanager
async def started(command: list[str]) -> AsyncIterator[trio.Process]:
    """A running console script; killed (and waited for) if the test leaves it running."""
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    try:
        yield process
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    await pipe.aclose()


async def arun(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(60):
        done: subprocess.CompletedProcess[bytes] = await trio.run_process(
            [str(SCRIPT), *args], capture_stdout=True, capture_stderr=True, check=False, env=_env()
        )
    return done


def test_version_and_help_are_plain_text() -> None:
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"kaspa-peer {__version__}"
    texts = [run("--help").stdout] + [run(command, "--help").stdout for command in COMMANDS]
    for text in texts:
        assert text.startswith("usage: kaspa-peer")
        for markup in ("``", ":func:", ":class:", ":mod:", ":attr:", ".. ", "`~"):
            assert markup not in text, (markup, text)
    for command in COMMANDS:
        assert command in texts[0]
    for text in texts[1:]:
        for option in ("--net", "--protocol", "--verbose", "--quiet", "--json"):
            assert option in text


def test_crawl_settings_help_shows_each_command_s_own_defaults() -> None:
    # What --help says is what the command runs with: CrawlConfig's for crawl, the
    # demo's own for demo (its loopback nodes answer at once or never).
    from trio_kaspa_peer._cli._crawl import DEMO_SETTINGS

    parser = cli.build_parser()
    crawl = parser.parse_args(["crawl", "127.0.0.1"])
    demo_help = run("demo", "--help").stdout
    crawl_help = run("crawl", "--help").stdout
    config = CrawlConfig()
    for option, field, unit in (
        ("--concurrency N", "concurrency", ""),
        ("--step-timeout S", "step_timeout", " s"),
        ("--retries N", "retries", ""),
    ):
        for text, value in (
            (crawl_help, getattr(config, field)),
            (demo_help, DEMO_SETTINGS[field]),
        ):
            shown = re.search(re.escape(option) + r"\s+.*?\(default ([0-9.]+)" + unit, text)
            assert shown is not None, (option, text)
            assert float(shown.group(1)) == value
    assert crawl.concurrency is None  # nothing given: the config's default applies


def test_demo_speaks_the_library_default_protocol(tmp_path: Path) -> None:
    done = run("demo", "--nodes", "40", "--out", str(tmp_path), "--json", *FAST)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["network"] == "kaspa-simnet"  # the modern protocol, PeerConfig's default
    mix = default_mix(40)
    failing = sum(n for k, n in mix.items() if k.expected("modern")[0] is NodeStatus.UNREACHABLE)
    assert summary["unreachable"] == failing
    assert summary["reachable"] == 40 - failing
    assert set(summary["protocol_versions"]) <= {"7", "9", "10"}


def test_demo_json_and_files(tmp_path: Path) -> None:
    done = run("demo", "--nodes", "60", "--out", str(tmp_path), "--json", *V1, *FAST)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    mix = default_mix(60)
    failing = sum(n for kind, n in mix.items() if kind.expected("v1")[0] is NodeStatus.UNREACHABLE)
    assert summary["nodes"] == summary["discovered"] == 60
    assert summary["unreachable"] == failing
    assert summary["reachable"] == 60 - failing
    assert summary["complete"] is True
    assert summary["interrupted"] is False
    db = Path(summary["database"])
    report = Path(summary["report"])
    assert db.parent == report.parent == tmp_path
    assert "<!DOCTYPE html>" in report.read_text(encoding="utf-8")[:100]
    with NodeStore(db) as store:
        assert store.check() == []
        assert len(store.nodes()) == 60
    again = run("demo", "--nodes", "30", "--out", str(tmp_path), "--json", *V1, *FAST)
    assert json.loads(again.stdout)["nodes"] == 30  # the demo starts its store afresh


@pytest.mark.parametrize("option", ["--db", "--report"])
def test_demo_never_replaces_a_file_the_user_named(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It starts afresh with its own files; one given with --db or --report may be precious.
    precious = tmp_path / "precious"
    precious.write_text("keep me", encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["demo", "--nodes", "5", "--out", str(out), option, str(precious)]) == 2
    assert not out.exists()  # a command refused makes nothing
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{option} {precious} exists" in err
    assert "afresh" in err
    assert precious.read_text(encoding="utf-8") == "keep me"
    assert not list(tmp_path.glob("kaspa-demo-*"))


@pytest.mark.parametrize("columns", [80, 120])
def test_demo_tables_fit_the_terminal(columns: int, tmp_path: Path) -> None:
    done = run("demo", "--nodes", "40", "--out", str(tmp_path), *V1, *FAST, columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    paths = [line for line in lines if line.startswith(("database: ", "report: "))]
    assert len(paths) == 2  # file paths are printed whole, on lines of their own
    assert max(len(line) for line in lines if line not in paths) <= columns
    text = done.stdout
    for heading in (
        "Not reached, or filtered: why",
        "User agents",
        "Protocol versions",
        "Services",
    ):
        assert heading in text
    assert "Countries are left out" in text
    assert "reachable" in text
    assert "median handshake" in text
    assert re.search(r"refused\s+\d+\s+connection refused", text)
    assert "…" not in "".join(line for line in lines if "kaspad" in line)  # agents are whole


async def test_crawl_jsonl_to_stdout_keeps_stdout_to_the_lines() -> None:
    # `kaspa-peer crawl ... --jsonl - | jq`: the summary goes to stderr, not between them.
    config = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET)
    async with open_simulated_network(6, config, seed=5) as network:
        for form in ((), ("--json",)):
            done = await arun(
                "crawl", str(network.seeds[0]), *V1, *FAST, "--allow", "127.0.0.0/8",
                "--retries", "1", "--jsonl", "-", *form,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()
            lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
            assert len(lines) == 6
            assert all("address" in line for line in lines)
            assert b"reachable" in done.stderr


async def test_crawl_against_in_process_nodes(tmp_path: Path) -> None:
    config = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET)
    db, jsonl, report = tmp_path / "c.sqlite", tmp_path / "c.jsonl", tmp_path / "c.html"
    async with open_simulated_network(40, config, seed=41) as network:
        done = await arun(
            "crawl", str(network.seeds[0]), *V1, *FAST, "--allow", "127.0.0.0/8",
            "--retries", "1", "--db", str(db), "--jsonl", str(jsonl), "--report", str(report),
            "--json",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert summary["nodes"] == 40
    assert summary["network"] == "v1-simnet"
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {line["address"] for line in lines} == {str(n.address) for n in network.nodes}
    for line in lines:
        node = network.node(NodeAddress.parse(line["address"]))
        assert (line["status"], line["reason"]) == tuple(
            None if v is None else v.value for v in node.kind.expected("v1")
        )
    assert report.exists()
    with NodeStore(db) as store:
        assert store.check() == []
        assert len(store.nodes()) == 40
        [run_row] = store.runs()
        assert run_row.completed


async def test_resuming_a_finished_crawl_says_nothing_is_left(tmp_path: Path) -> None:
    db = tmp_path / "done.sqlite"
    async with open_simulated_network(6, V1_SIMNET, mix=v1_mix(5, 1), seed=5) as network:
        options = [*V1, *FAST, "--allow", "127.0.0.0/8", "--retries", "0", "--db", str(db)]
        first = await arun("crawl", str(network.seeds[0]), *options)
        assert first.returncode == 0, first.stderr.decode()
        again = await arun("crawl", "--resume", *options)
        as_json = await arun("crawl", "--resume", *options, "--json")
    assert again.returncode == 0, again.stderr.decode()  # a finished crawl is no failure
    text = again.stdout.decode()
    assert "nothing left to probe" in text
    assert "6 nodes (5 reachable, 1 unreachable)" in text
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    assert data["nothing_left"] is True
    assert (data["nodes"], data["reachable"], data["unreachable"]) == (6, 5, 1)


async def test_ctrl_c_during_a_crawl_leaves_a_consistent_store(tmp_path: Path) -> None:
    config = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET)
    db = tmp_path / "i.sqlite"
    mix = dict.fromkeys(NodeKind, 0)
    mix[NodeKind.NORMAL] = 20
    mix[NodeKind.SLOW] = 60
    async with open_simulated_network(80, config, mix=mix, seed=43, slow=(0.1, 0.2)) as network:
        command = [
            str(SCRIPT), "crawl", str(network.seeds[0]), *V1, "--allow", "127.0.0.0/8",
            "--concurrency", "2", "--db", str(db),
        ]  # fmt: skip
        async with started(command) as process:
            with trio.fail_after(30):
                while not await trio.to_thread.run_sync(_probed, db, 5):  # noqa: ASYNC110
                    await trio.sleep(0.2)  # polling a file another process writes
                process.send_signal(signal.SIGINT)
                assert process.stdout is not None
                output = b""
                async for chunk in process.stdout:
                    output += chunk
                status = await process.wait()
    assert status == 130
    text = output.decode()
    assert "stopped early" in text
    assert "Interrupted: what was probed is stored." in text
    with NodeStore(db) as store:
        assert store.check() == []
        probed = [r for r in store.nodes() if r.status is not NodeStatus.PENDING]
        assert 5 <= len(probed) < 80
        assert store.nodes(NodeStatus.PENDING)
        [run_row] = store.runs()
        assert not run_row.completed
        assert run_row.finished is not None


def _probed(db: Path, at_least: int) -> bool:
    if not db.exists():
        return False
    try:
        connection = sqlite3.connect(db, timeout=1)
        try:
            (count,) = connection.execute(
                "SELECT count(*) FROM nodes WHERE status != 'pending'"
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return bool(count >= at_least)


def v1_mix(normal: int, refusing: int = 0) -> dict[NodeKind, int]:
    """A simulated protocol-1 network's mix: ``normal`` answering nodes, ``refusing`` dead."""
    mix = dict.fromkeys(NodeKind, 0)
    mix[NodeKind.NORMAL] = normal
    mix[NodeKind.REFUSING] = refusing
    return mix


V1_SIMNET = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET)


async def test_probe_command(tmp_path: Path) -> None:
    async with open_simulated_network(5, V1_SIMNET, mix=v1_mix(4, 1), seed=47) as network:
        good = network.of_kind(NodeKind.NORMAL)[0]
        dead = network.of_kind(NodeKind.REFUSING)[0]
        done = await arun("probe", str(good.address), str(dead.address), *V1, "--json")
        table = await arun("probe", str(good.address), *V1)
    assert done.returncode == 1  # one was not reached
    results: list[dict[str, Any]] = json.loads(done.stdout)
    assert [r["status"] for r in results] == ["reachable", "unreachable"]
    assert results[0]["user_agent"].endswith(f"/{good.user_agent_name}:{good.user_agent_version}/")
    assert results[0]["addresses_received"] == (len(good.known) + 1) // 2
    assert results[0]["ping_ms"] > 0
    assert results[1]["reason"] == "refused"
    assert table.returncode == 0
    assert good.user_agent_name in table.stdout.decode()
    assert "handshake" in table.stdout.decode()


async def test_probe_table_says_how_many_addresses_are_dialable() -> None:
    async with open_simulated_network(5, V1_SIMNET, mix=v1_mix(5), seed=47) as network:
        good = network.of_kind(NodeKind.NORMAL)[0]
        plain = await arun("probe", str(good.address), *V1)
        allowed = await arun("probe", str(good.address), *V1, "--allow", "127.0.0.0/8")
    assert plain.returncode == allowed.returncode == 0
    given = (len(good.known) + 1) // 2
    assert given > 1
    # Its neighbours are on loopback: dialable only where --allow lets them be.
    assert f"{given} received in 1 answer, 0 dialable" in plain.stdout.decode()
    assert f"{given} received in 1 answer, {given} dialable" in allowed.stdout.decode()
    assert re.search(
        r"--allow CIDR\s+count the non-routable addresses", run("probe", "--help").stdout
    )


async def test_quiet_probe_prints_nothing_but_errors() -> None:
    async with open_simulated_network(2, V1_SIMNET, mix=v1_mix(1, 1), seed=47) as network:
        good = network.of_kind(NodeKind.NORMAL)[0]
        dead = network.of_kind(NodeKind.REFUSING)[0]
        fine = await arun("probe", str(good.address), *V1, "-q")
        failed = await arun("probe", str(good.address), str(dead.address), *V1, "-q")
    assert (fine.returncode, fine.stdout, fine.stderr) == (0, b"", b"")
    assert (failed.returncode, failed.stdout) == (1, b"")  # the exit status says it


async def test_watch_command() -> None:
    config = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET)
    mix = dict.fromkeys(NodeKind, 0)
    mix[NodeKind.NORMAL] = 2
    async with open_simulated_network(2, config, mix=mix, seed=53, announce_interval=0.05) as net:
        done = await arun(
            "watch", str(net.seeds[0]), *V1, "--duration", "1.5", "--interval", "0.5", "--json"
        )
    assert done.returncode == 0, done.stderr.decode()
    events = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert events[0]["event"] == "connected"
    assert (
        "kaspad" in events[0]["user_agent"]
        or "kaspa-sim" in events[0]["user_agent"]
        or ("ancient" in events[0]["user_agent"])
    )
    intervals = [e for e in events if e["event"] == "interval"]
    assert len(intervals) >= 2
    end = events[-1]
    assert end["event"] == "end"
    assert end["blocks"] >= 10
    assert end["distinct_blocks"] == end["blocks"]  # every announced block was new
    assert end["average_blocks_per_s"] > 5
    assert end["longest_gap_s"] < 1
    assert end["closed"] is None
    assert end["interrupted"] is False


@pytest.mark.parametrize("protocol", ["1", "modern"])
async def test_listen_command(protocol: str) -> None:
    flags = ["--protocol", protocol, "--net", "simnet"]
    command = [str(SCRIPT), "listen", *flags, "--port", "0", "--known", "8.8.8.8:16511", "--json"]
    async with started(command) as process:
        assert process.stdout is not None
        host, port, buffer = await listening_on(process)
        with trio.fail_after(20):
            peer_config = PeerConfig(protocol=protocol, net="simnet")
            config = CrawlConfig(
                peer=peer_config,
                handshake_timeout=2,
                step_timeout=30,
                address_rounds=1,
            )
            # The node answers at once: no probe may wait out a step (a pong read before
            # the ping's write was accounted once made every probe wait for a second one).
            with trio.fail_after(8):
                records = [await probe(f"{host}:{port}", config) for _ in range(10)]
            for record in records:
                assert record.status is NodeStatus.REACHABLE
                assert record.addresses_received == 1
                assert record.ping_ms is not None
            async with open_tcp_peer(host, int(port), peer_config) as peer:
                answer: object
                if protocol == "1":
                    inv = wire.InvVect(wire.InvType.TX, wire.Hash(b"\x05" * 32))
                    await peer.send(wire.MsgGetData([inv]))
                    answer = wire.MsgNotFound([inv])
                else:
                    tx = pw.TransactionId(bytes=b"\x05" * 32)
                    await peer.send(pw.RequestTransactionsMessage(ids=[tx]))
                    answer = pw.TransactionNotFoundMessage(id=tx)
                async for message in peer.messages():
                    if type(message) is type(answer):
                        assert message == answer
                        break
            process.send_signal(signal.SIGINT)
            async for chunk in process.stdout:
                buffer += chunk
            status = await process.wait()
    assert status == 130  # Ctrl-C, its way to stop, as for every command
    events = [json.loads(line) for line in buffer.decode().splitlines()]
    kinds = [e["event"] for e in events]
    for kind in ("connected", "addresses_sent", "refused", "closed"):
        assert kind in kinds
    stopped = events[-1]
    assert stopped["event"] == "stopped"
    assert stopped["peers"] == 11
    assert stopped["refusals"] == 1
    assert len(stopped["last_peers"]) == 11


async def test_sigterm_stops_a_command_with_143() -> None:
    # As shells give: 128 plus the signal's number (Ctrl-C's is 130).
    command = [str(SCRIPT), "listen", "--protocol", "1", "--net", "simnet", "--port", "0"]
    command += ["--json"]
    async with started(command) as process:
        assert process.stdout is not None
        await listening_on(process)
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            async for _ in process.stdout:
                pass
            status = await process.wait()
    assert status == 128 + signal.SIGTERM


async def _drain(stream: trio.abc.ReceiveStream | None) -> bytes:
    assert stream is not None
    data = b""
    async for chunk in stream:
        data += chunk
    return data


@pytest.mark.parametrize("command", ["probe", "watch"])
async def test_ctrl_c_before_the_handshake_exits_130(command: str) -> None:
    # A node that accepts and never says a word: Ctrl-C while we wait for its handshake.
    async with trio.open_nursery() as nursery:
        [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
        accepted = trio.Event()
        held: list[trio.SocketStream] = []

        async def accept() -> None:
            held.append(await listener.accept())
            accepted.set()

        nursery.start_soon(accept)
        port = listener.socket.getsockname()[1]
        target = f"127.0.0.1:{port}"
        async with started([str(SCRIPT), command, target, *V1, "--timeout", "60", "--json"]) as p:
            with trio.fail_after(20):
                await accepted.wait()
                p.send_signal(signal.SIGINT)
                out, err = await _drain(p.stdout), await _drain(p.stderr)
                status = await p.wait()
        for stream in held:
            await stream.aclose()
        await listener.aclose()
    assert status == 130
    assert out == b""  # no results, no "end" event for a node never watched
    assert err.decode().startswith(f"kaspa-peer {command}: interrupted")
    assert err.count(b"\n") == 1


async def test_ctrl_c_while_watching_exits_130_after_the_summary() -> None:
    config = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET)
    mix = dict.fromkeys(NodeKind, 0)
    mix[NodeKind.NORMAL] = 2
    async with open_simulated_network(2, config, mix=mix, seed=53, announce_interval=0.05) as net:
        command = [str(SCRIPT), "watch", str(net.seeds[0]), *V1, "--json"]
        async with started(command) as process:
            assert process.stdout is not None
            with trio.fail_after(20):
                buffer = b""
                while b"\n" not in buffer:
                    buffer += await process.stdout.receive_some(4096)
                assert json.loads(buffer.split(b"\n")[0])["event"] == "connected"
                process.send_signal(signal.SIGINT)
                buffer += await _drain(process.stdout)
                status = await process.wait()
    assert status == 130
    end = json.loads(buffer.decode().splitlines()[-1])
    assert end["event"] == "end"
    assert end["interrupted"] is True


async def test_listen_logs_and_counts_failed_handshakes() -> None:
    command = [str(SCRIPT), "listen", "--protocol", "modern", "--net", "simnet", "--port", "0"]
    async with started([*command, "--json"]) as process:
        host, port, buffer = await listening_on(process)
        with trio.fail_after(20):
            for config in (
                PeerConfig(protocol="modern", net="mainnet"),  # another network
                PeerConfig(protocol=1, net="simnet"),  # the other protocol
            ):
                with pytest.raises(HandshakeError):
                    async with open_tcp_peer(host, int(port), config):
                        pass
            http = await trio.open_tcp_stream(host, int(port))
            await http.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with trio.move_on_after(1):
                async for _ in http:
                    pass
            await http.aclose()
            for _ in range(9):  # connected and gone at once: a flood, counted
                await (await trio.open_tcp_stream(host, int(port))).aclose()
            await trio.sleep(0.5)
            process.send_signal(signal.SIGINT)
            buffer += await _drain(process.stdout)
            errors = await _drain(process.stderr)
            assert await process.wait() == 130
    events = [json.loads(line) for line in buffer.decode().splitlines()]
    failed = [e for e in events if e["event"] == "handshake_failed"]
    assert len(failed) == 10  # one line each, at most 10 a minute
    assert "Network mismatch" in failed[0]["detail"]
    assert "HTTP/2" in failed[2]["detail"]
    assert all(e["peer"].startswith("127.0.0.1:") for e in failed)
    stopped = events[-1]
    assert stopped["failed_handshakes"] == 12
    assert stopped["peers"] == 0
    assert errors == b""  # the server's own INFO lines stay quiet without -v


def test_bad_usage_gets_clear_errors() -> None:
    done = run("crawl", *V1)
    assert done.returncode == 2
    assert "give seed addresses" in done.stderr
    # Values the library refuses (UsageError, ConfigError) are bad usage too: status 2.
    done = run("probe", "127.0.0.1:1", "--net", "nowhere", "--protocol", "1")
    assert done.returncode == 2
    assert "unknown network 'nowhere'" in done.stderr
    assert "Traceback" not in done.stderr
    done = run("probe", "127.0.0.1:notaport", *V1)
    assert done.returncode == 2
    assert "bad port" in done.stderr
    done = run("demo", "--nodes", "0")
    assert done.returncode == 2
    assert "must be positive" in done.stderr
    done = run("listen", *V1, "--known", "seed.example:1")
    assert done.returncode == 2
    assert done.stderr == (
        "kaspa-peer listen: error: --known seed.example:1: give an IP address, not a host name\n"
    )
    # The command's options, not the Python API's, in what it tells.
    done = run("probe", "127.0.0.1:1", "--net", "regtest", "--protocol", "modern")
    assert done.returncode == 2
    assert "(regtest is protocol 1's: --protocol 1)" in done.stderr
    assert "--nodes N " in run("demo", "--help").stdout  # N, as the docs say


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["127.0.0.1:1", "--resume"], "--resume carries on from a store: give it with --db"),
        (["--resume", "--db", "nowhere.sqlite"], "--resume: there is no store at nowhere"),
        (["127.0.0.1:1", "--reprobe-good", "60"], "--reprobe-good is for a continuous crawl"),
        (["127.0.0.1:1", "--reprobe-bad", "60"], "--reprobe-bad is for a continuous crawl"),
        (["127.0.0.1:1", "--prune-after", "60"], "--prune-after is for a continuous crawl"),
        (["--default-dns-seeds"], "--default-dns-seeds: v1-simnet has no DNS seeders"),
        (["--continuous", "--db", "nowhere.sqlite"], "give seed addresses"),
    ],
)
def test_crawl_refuses_options_that_would_do_nothing(
    options: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["crawl", *V1, *options]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1
    assert not (tmp_path / "nowhere.sqlite").exists()


def _probes(db: Path) -> int:
    connection = sqlite3.connect(db, timeout=1)
    try:
        (count,) = connection.execute("SELECT count(*) FROM probes").fetchone()
    except sqlite3.Error:
        return 0
    finally:
        connection.close()
    return int(count)


async def test_a_continuous_crawl_resumes_from_its_store(tmp_path: Path) -> None:
    # As the library's continuous mode (and docs/howto.rst): --db is where it carries on.
    config = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET)
    db = tmp_path / "fresh.sqlite"
    mix = dict.fromkeys(NodeKind, 0)
    mix[NodeKind.NORMAL] = 4
    async with open_simulated_network(4, config, mix=mix, seed=7) as network:
        options = [*V1, *FAST, "--allow", "127.0.0.0/8", "--db", str(db)]
        first = await arun("crawl", str(network.seeds[0]), *options)
        assert first.returncode == 0, first.stderr.decode()
        assert _probes(db) == 4
        command = [
            str(SCRIPT), "crawl", *options, "--continuous", "--reprobe-good", "0.2", "--json",
        ]  # fmt: skip
        async with started(command) as process:
            with trio.fail_after(30):
                while await trio.to_thread.run_sync(_probes, db) < 8:  # noqa: ASYNC110
                    await trio.sleep(0.2)  # polling a file another process writes
                process.send_signal(signal.SIGINT)
                output = await _drain(process.stdout)
                status = await process.wait()
    assert status == 130
    assert json.loads(output)["reachable"] == 4  # its nodes, re-probed: no seed was given


def test_runtime_failures_get_one_line_errors(tmp_path: Path) -> None:
    # Raised inside the command's nursery, they used to come out as exception groups.
    done = run("probe", "127.0.0.1:99999")
    assert done.returncode == 2  # bad usage, found as the command runs
    assert "port must be an int in 1..65535" in done.stderr
    done = run("watch", "127.0.0.1:1")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "kaspa-peer watch: error: could not connect to 127.0.0.1:1: Connection refused"
    )
    store = tmp_path / "other.sqlite"
    done = run("crawl", "127.0.0.1:1", "--db", str(store), *V1)
    assert done.returncode == 1  # a crawl that reached no node failed
    done = run("crawl", "127.0.0.1:1", "--db", str(store))
    assert done.returncode == 1
    assert "(one file per network)" in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = run("listen", "--host", "127.0.0.1", "--port", str(taken.getsockname()[1]))
    assert done.returncode == 1
    assert "Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("option", ["--report", "--jsonl"])
def test_crawl_checks_where_its_files_go_before_it_starts(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nodir" / "r.out"
    assert cli.main(["crawl", "127.0.0.1:1", *V1, option, str(target)]) == 2
    err = capsys.readouterr().err
    assert f"{option} {target}: there is no directory" in err
    assert err.count("\n") == 1
    assert cli.main(["crawl", "127.0.0.1:1", *V1, option, str(tmp_path)]) == 2
    assert f"{option} {tmp_path} is a directory" in capsys.readouterr().err


def test_crawl_prints_its_summary_before_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trio_kaspa_peer._cli import _crawl

    def failing(source: Any, path: Path, *, title: str = "") -> Path:
        # As the real one fails: on the temporary file it writes first.
        raise OSError(28, "No space left on device", f"{path}.tmp")

    monkeypatch.setattr(_crawl, "write_report", failing)
    report = tmp_path / "r.html"
    argv = ["crawl", "127.0.0.1:1", *V1, "--retries", "0", "--report", str(report)]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert "unreachable" in captured.out  # the summary was not lost
    assert f"cannot write the report {report}: No space left on device" in captured.err
    assert ".tmp" not in captured.err


def test_watch_timeout_bounds_the_handshake_too() -> None:
    assert re.search(
        r"--timeout S\s+connect and handshake timeout \(default 10\)",
        run("watch", "--help").stdout,
    )
    with socket.socket() as silent:  # accepts (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        target = f"127.0.0.1:{silent.getsockname()[1]}"
        done = run("watch", target, *V1, "--timeout", "0.5", timeout=20)
        assert done.returncode == 1
        assert "handshake" in done.stderr
        assert done.stderr.count("\n") == 1
        # A --duration shorter than the handshake: said so, not a summary of nothing.
        done = run("watch", target, *V1, "--duration", "0.3", timeout=20)
        assert done.returncode == 1
        assert done.stderr == "kaspa-peer watch: error: no handshake within 0.3 s\n"
        assert done.stdout == ""


def test_demo_checks_it_may_open_a_file_per_node(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    from trio_kaspa_peer._cli._common import CommandError
    from trio_kaspa_peer._cli._crawl import open_files_for

    limits = {"soft": 1024, "hard": 4096}
    monkeypatch.setattr(resource, "getrlimit", lambda _: (limits["soft"], limits["hard"]))
    monkeypatch.setattr(
        resource, "setrlimit", lambda _, new: limits.update(soft=new[0], hard=new[1])
    )
    open_files_for(500, 32)  # room enough: nothing changes
    assert limits == {"soft": 1024, "hard": 4096}
    open_files_for(3000, 32)  # the soft limit raised, within the hard one
    assert 3000 < limits["soft"] <= 4096
    with pytest.raises(CommandError, match=r"--nodes 25000 needs about \d+ open files"):
        open_files_for(25000, 32)
    assert limits["hard"] == 4096


def test_clear_error_without_rich(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("rich", "rich.console", "rich.table", "rich.live"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    assert cli.main(["demo", "--nodes", "1"]) == 1
    captured = capsys.readouterr()
    assert "pip install 'trio-kaspa-peer[cli]'" in captured.err
    assert captured.out == ""


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trio_kaspa_peer", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"kaspa-peer {__version__}"


async def test_listen_max_peers_refuses_connections_over_it() -> None:
    command = [str(SCRIPT), "listen", *V1, "--port", "0", "--max-peers", "1", "--json"]
    async with started(command) as process:
        host, port, _ = await listening_on(process)
        config = PeerConfig(protocol=1, net="simnet")
        with trio.fail_after(10):
            async with open_tcp_peer(host, int(port), config) as first:
                with pytest.raises(HandshakeError):
                    async with open_tcp_peer(host, int(port), config):
                        pass
                assert not first.closed
            while True:  # room once the server has seen the first leave
                try:
                    async with open_tcp_peer(host, int(port), config) as again:
                        assert not again.closed
                        break
                except HandshakeError:
                    await trio.sleep(0.05)


def test_listen_passes_its_limits_to_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    async def fake_serve(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise ListenError("stop here")

    monkeypatch.setattr(listen_module, "serve_tcp_peers", fake_serve)
    assert cli.main(["listen", *V1, "--port", "0", "--ban-duration", "2.5"]) == 1
    assert seen["ban_duration"] == 2.5
    assert seen["max_peers"] is None
    assert cli.main(["listen", *V1, "--port", "0", "--max-peers", "7"]) == 1
    assert seen["ban_duration"] is None
    assert seen["max_peers"] == 7


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_listen_prints_nothing_but_errors(
    quiet: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trio_kaspa_peer import serve_tcp_peers as real

    async def serve_then_ctrl_c(*args: Any, task_status: Any, **kwargs: Any) -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(functools.partial(real, *args, **kwargs))
            task_status.started(listeners)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the user stops it
            await trio.sleep_forever()

    monkeypatch.setattr(listen_module, "serve_tcp_peers", serve_then_ctrl_c)
    assert cli.main(["listen", *V1, "--port", "0", *(["-q"] if quiet else [])]) == 130
    out = capsys.readouterr().out
    if quiet:
        assert out == ""
    else:
        assert out.startswith("listening on 127.0.0.1:")
        assert "listen: statistics" in out


@pytest.mark.parametrize(
    "bad", [["--max-peers", "0"], ["--ban-duration", "-1"], ["--ban-duration", "inf"]]
)
def test_listen_limits_are_checked(bad: list[str]) -> None:
    done = run("listen", *V1, "--port", "0", *bad)
    assert done.returncode == 2
    assert "must be positive" in done.stderr
