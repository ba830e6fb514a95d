"""SessionStore: goose files, atomic saves, caching across processes, locks."""

from __future__ import annotations

import json
import multiprocessing
import os
import re

import pytest

from goose_api.conversation import Message, tool_request, tool_response
from goose_api.errors import BadRequest, Conflict, NotFound, SessionBusy
from goose_api.providers.base import Usage
from goose_api.sessions.store import SessionCorrupt, SessionStore, new_metadata
from goose_api.storage.data_dir import DataDir
from tests.support.goose_format import assert_goose_session


@pytest.fixture
def store(tmp_path):
    return SessionStore(DataDir.at(tmp_path / "data", tmp_path / "sessions"))


def test_create_writes_goose_metadata_line(store, tmp_path):
    session = store.create("abc", str(tmp_path), "fix the build")
    meta, messages = assert_goose_session(session.path)
    assert meta["working_dir"] == str(tmp_path)
    assert meta["description"] == "fix the build"
    assert meta["schedule_id"] is None and meta["total_tokens"] is None
    assert messages == []


def test_generated_ids_are_goose_style_and_unique(store, tmp_path):
    ids = {store.create(None, str(tmp_path)).id for _ in range(3)}
    assert len(ids) == 3
    assert all(re.match(r"^\d{8}_\d{6}(_\d+)?$", i) for i in ids)


def test_a_burst_of_sessions_takes_one_try_each_and_skips_ids_another_worker_took(store, tmp_path, monkeypatch):
    other = SessionStore(store.data)  # another worker process: its own counter
    taken = {other.create(None, str(tmp_path)).id for _ in range(3)}
    exclusive_creates = []
    real_open = os.open

    def counting_open(path, flags, *args):
        if flags & os.O_EXCL and str(path).endswith(".jsonl"):
            exclusive_creates.append(path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", counting_open)
    ids = [store.create(None, str(tmp_path)).id for _ in range(40)]
    assert len(set(ids)) == 40 and not taken & set(ids)
    assert len(exclusive_creates) <= 40 + len(taken)  # not one probe per id taken earlier in the second


def test_client_id_taken_is_conflict(store, tmp_path):
    store.create("dup", str(tmp_path))
    with pytest.raises(Conflict):
        store.create("dup", str(tmp_path))


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "a/b", "a b", "x" * 129, "é", "a.jsonl"])
def test_bad_ids_rejected(store, bad):
    with pytest.raises(BadRequest):
        store.path(bad)


def test_append_and_reload_round_trip(store, tmp_path):
    session = store.create("s1", str(tmp_path))
    store.append(session, Message.user("hi"))
    store.append(session, Message.assistant(tool_request("c1", "dev__shell", {"command": "ls"})))
    store.append(session, Message("user", [tool_response("c1", [{"type": "text", "text": "a.txt"}])]))
    session.record_usage(Usage(10, 5, 15))
    session.record_usage(Usage(20, 5, 25))
    store.append(session, Message.assistant("done"))
    meta, messages = assert_goose_session(session.path)
    assert meta["message_count"] == 4
    assert (meta["input_tokens"], meta["accumulated_input_tokens"], meta["accumulated_total_tokens"]) == (20, 30, 40)
    fresh = SessionStore(store.data).load("s1")
    assert [m.to_json() for m in fresh.messages] == messages


def test_usage_clamped_to_i32(store, tmp_path):
    session = store.create("big", str(tmp_path))
    session.record_usage(Usage(2**40, 1, 2**40 + 1))
    store.append(session, Message.user("x"))
    meta, _ = assert_goose_session(session.path)
    assert meta["input_tokens"] == 2**31 - 1


def test_load_sees_other_process_write(store, tmp_path):
    session = store.create("shared", str(tmp_path))
    store.append(session, Message.user("one"))
    other = SessionStore(store.data)
    theirs = other.load("shared")
    other.append(theirs, Message.assistant("two"))
    assert [m.text() for m in store.load("shared").messages] == ["one", "two"]


def test_goose_cli_file_with_extra_metadata_is_kept(store, tmp_path):
    path = store.dir / "cli.jsonl"
    meta = {"working_dir": "/tmp", "description": "cli made", "schedule_id": None, "message_count": 1,
            "total_tokens": 5, "input_tokens": 3, "output_tokens": 2, "accumulated_total_tokens": 5,
            "accumulated_input_tokens": 3, "accumulated_output_tokens": 2, "extension_data": {"x": 1}}
    path.write_text(json.dumps(meta) + "\n" + json.dumps(Message.user("hello").to_json()) + "\n")
    session = store.load("cli")
    store.append(session, Message.assistant("hi"))
    saved, messages = assert_goose_session(path)
    assert saved["extension_data"] == {"x": 1} and len(messages) == 2


def test_corrupt_line_is_reported_not_overwritten(store, tmp_path):
    path = store.dir / "bad.jsonl"
    original = '{"working_dir":"/"}\n{"role":"user","created":1.5,"content":[]}\n'
    path.write_text(original)
    with pytest.raises(SessionCorrupt, match="line 2"):
        store.load("bad")
    assert path.read_text() == original


def test_missing_and_delete(store, tmp_path):
    with pytest.raises(NotFound):
        store.load("nope")
    store.create("gone", str(tmp_path))
    store.delete("gone")
    with pytest.raises(NotFound):
        store.load("gone")


def test_the_listing_is_newest_first_by_modification(store, tmp_path):
    a = store.create("a", str(tmp_path))
    store.create("b", str(tmp_path))
    os.utime(store.path("b"), (1, 1))
    store.append(a, Message.user("newer"))
    assert [session_id for session_id, _ in store.list_ids()] == ["a", "b"]


def test_no_temp_files_left(store, tmp_path):
    session = store.create("t", str(tmp_path))
    for i in range(5):
        store.append(session, Message.user(str(i)))
    assert sorted(p.name for p in store.dir.iterdir()) == ["t.jsonl"]


def _hold_lock(data, ready, release):
    store = SessionStore(data)
    with store.lock("x"):
        ready.set()
        release.wait(10)


def test_lock_is_exclusive_across_threads_and_processes(store):
    with store.lock("x"):
        with pytest.raises(SessionBusy):
            with store.lock("x"):
                pass
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(store.data, ready, release))
    proc.start()
    try:
        assert ready.wait(20)
        with pytest.raises(SessionBusy) as info:
            with store.lock("x"):
                pass
        assert info.value.status == 409
    finally:
        release.set()
        proc.join(10)
    with store.lock("x"):
        pass


def test_a_loaded_file_is_saved_line_for_line_with_new_messages_after_it(store, tmp_path):
    path = store.dir / "kept.jsonl"
    lines = [json.dumps(Message.user("héllo ✓").to_json(), ensure_ascii=False),
             json.dumps(Message.assistant("ok").to_json())]  # spaced and escaped unlike what we write
    meta = {**new_metadata("/tmp", "cli made"), "message_count": 2}
    path.write_text(json.dumps(meta) + "\n" + "\n".join(lines) + "\n\n", encoding="utf-8")
    session = store.load("kept")
    store.append(session, Message.user("more"))
    saved = path.read_text(encoding="utf-8").splitlines()
    assert saved[1:3] == lines and json.loads(saved[3])["content"][0]["text"] == "more"
    assert json.loads(saved[0])["message_count"] == 3
    store.replace_messages(session, [Message.user("only")])
    meta, messages = assert_goose_session(path)
    assert meta["message_count"] == 1 and [m["content"][0]["text"] for m in messages] == ["only"]


def test_every_save_with_a_message_is_synced_to_disk_the_empty_new_session_need_not_be(store, tmp_path, monkeypatch):
    """The file's bytes, then (after the rename) its directory: the new name survives a power loss too."""
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        synced.append("dir" if os.path.isdir(target) else ("temp" if ".tmp" in target else target))
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    session = store.create("durable", str(tmp_path))
    assert synced == []
    store.append(session, Message.user("my prompt"))
    assert synced == ["temp", "dir"]
    store.replace_messages(session, [Message.user("summary")])
    assert synced == ["temp", "dir"] * 2
