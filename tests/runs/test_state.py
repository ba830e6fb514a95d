"""The shared run files: event log ids and readers, records under the lock, leases."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from goose_api.runs.event_log import LogSignal
from goose_api.runs.state import RUNNING, RunStateStore, is_active, new_record
from goose_api.storage.data_dir import DataDir
from goose_api.storage.process import HOST
from tests.support.mcp_fixtures import wait_until


def store(tmp_path, lease_timeout: float = 30.0) -> RunStateStore:
    return RunStateStore(DataDir.at(tmp_path / "data", tmp_path / "sessions"), LogSignal(), lease_timeout)


def test_two_writers_never_reuse_an_id(tmp_path):
    """Two EventLog objects on one file stand for two processes appending (as an owner and an interrupter)."""
    state = store(tmp_path)
    one, two = state.log("s", "run_a", base=7), state.log("s", "run_a", base=7)

    def write(log, tag):
        for n in range(50):
            log.append("message", {"text": f"{tag}{n}"})
    threads = [threading.Thread(target=write, args=(log, tag)) for log, tag in ((one, "a"), (two, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [event.id for event in one.read()]
    assert ids == list(range(8, 108))
    assert one.next_id() == two.next_id() == 108


def test_reader_skips_a_line_still_being_written_and_resumes(tmp_path):
    state = store(tmp_path)
    log = state.log("s", "run_b", base=0)
    log.append("message", {"text": "one"})
    reader = log.follow(0)
    assert [e.data["text"] for e in reader.poll()] == ["one"]
    with open(log.path, "a") as fh:
        fh.write('{"id":2,"type":"message","data":{"text":"tw')
    assert reader.poll() == []
    with open(log.path, "a") as fh:
        fh.write('o"},"time":0}\n')
    assert [e.id for e in reader.poll()] == [2]
    assert [e.id for e in log.follow(1).poll()] == [2] and log.read(5) == []


def test_a_waiting_reader_wakes_when_this_process_appends(tmp_path):
    state = store(tmp_path)
    log = state.log("s", "run_c", base=0)
    reader = log.follow(0)
    got: list = []
    # It polls the file every 10 minutes: only the in-process signal can wake it before the join gives up.
    waiting = threading.Thread(target=lambda: got.extend(reader.wait(timeout=600, poll=600)), daemon=True)
    waiting.start()
    wait_until(lambda: state.signal.listeners(log.key), 10, "the reader to wait")
    log.append("done", {"status": "success"})
    waiting.join(60)
    assert [e.type for e in got] == ["done"] and got[0].terminal


def test_update_applies_only_to_the_same_run(tmp_path):
    state = store(tmp_path)
    state.write(new_record("s", "run_1", {"pid": os.getpid(), "host": HOST}))
    assert state.update("s", "run_1", lambda r: r.__setitem__("cancel", {"reason": "test"}))["cancel"]
    assert state.update("s", "run_other", lambda r: r.__setitem__("state", "idle")) is None
    assert state.update("s", "run_1", lambda r: False) is None
    record = state.read("s")
    assert record["state"] == RUNNING and is_active(record) and record["cancel"] == {"reason": "test"}


def test_lease_is_gone_when_the_pid_is_dead_or_the_heartbeat_stale(tmp_path):
    state = store(tmp_path, lease_timeout=5)
    alive = new_record("s", "r", {"pid": os.getpid(), "host": HOST})
    assert not state.owner_gone(alive)
    stale = new_record("s", "r", {"pid": os.getpid(), "host": HOST})
    stale["owner"]["heartbeat"] = time.time() - 6
    assert state.owner_gone(stale)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = new_record("s", "r", {"pid": child.pid, "host": HOST})
    assert state.owner_gone(dead)
    elsewhere = new_record("s", "r", {"pid": child.pid, "host": "another-host"})
    assert not state.owner_gone(elsewhere), "a pid on another host says nothing; only the heartbeat does"


def test_old_logs_are_pruned(tmp_path):
    state = store(tmp_path)
    for n in range(25):
        log = state.log("s", f"run_{n:02d}", base=n)
        log.append("done", {"status": "success"})
        os.utime(log.path, (n, n))
    state.prune_logs("s", slack=5)
    assert len(list(state.data.run_dir("s").glob("*.events.jsonl"))) == 25, "within the slack: nothing pruned yet"
    state.prune_logs("s", slack=4)
    kept = sorted(p.name for p in state.data.run_dir("s").glob("*.events.jsonl"))
    assert kept == [f"run_{n:02d}.events.jsonl" for n in range(5, 25)]
    state.delete("s")
    assert not state.data.run_dir("s").exists()
    state.delete("s")


def test_an_emptied_record_reads_as_no_run(tmp_path):
    """run.json is not fsynced: after a machine crash it may be empty; that is no run, not a 500."""
    state = store(tmp_path)
    with state.lock("s"):
        state.write(new_record("s", "r", {"pid": os.getpid(), "host": HOST}))
    assert state.read("s")["run_id"] == "r"
    state.data.run_record("s").write_bytes(b"")
    assert state.read("s") is None
    state.data.run_record("s").write_bytes(b'{"run_id": "r", "sta')
    assert state.read("s") is None


def test_an_append_wakes_the_readers_of_its_own_log_and_channels_do_not_pile_up(tmp_path):
    state = store(tmp_path)
    mine, other = state.log("s", "run_a", base=0), state.log("t", "run_b", base=0)
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(mine.follow(0).wait(timeout=60, poll=60)))
    reader.start()
    wait_until(lambda: list(state.signal._channels) == [mine.key], 5, "the reader to listen on its own log")
    other.append("message", {"text": "not for this reader"})
    mine.append("message", {"text": "hello"})
    reader.join(10)
    assert not reader.is_alive(), "the append woke the reader (it polls only every 60 s)"
    assert [(e.id, e.data) for e in got] == [(1, {"text": "hello"})]
    assert state.signal._channels == {}, "a channel lives while someone listens"
