"""Append-only JSON Lines: a torn last line is waited for, stepped over by the next append, skipped and logged once;
a write cut short by the file-size limit fails loudly and the next append still lands whole."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
import textwrap

from goose_api.storage import jsonl
from tests.support.app import ROOT


def test_lines_are_appended_and_read_back_in_order(tmp_path):
    path = tmp_path / "new" / "log.jsonl"
    end = jsonl.append(path, {"n": 1}, {"n": 2}, sync=True)
    assert end == path.stat().st_size
    assert jsonl.read(path) == [{"n": 1}, {"n": 2}]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert jsonl.read(tmp_path / "missing.jsonl") == []


def test_a_last_line_without_its_newline_waits(tmp_path):
    path = tmp_path / "log.jsonl"
    jsonl.append(path, {"n": 1})
    with open(path, "ab") as fh:
        fh.write(b'{"n": 2}')  # complete JSON, but its newline is not there yet
    reader = jsonl.Reader(path)
    assert reader.read() == [{"n": 1}]
    with open(path, "ab") as fh:
        fh.write(b"\n")
    assert reader.read() == [{"n": 2}]


def test_a_torn_line_is_stepped_over_by_the_next_append_and_skipped_once(tmp_path, caplog):
    path = tmp_path / "log.jsonl"
    jsonl.append(path, {"n": 1})
    with open(path, "ab") as fh:
        fh.write(b'{"n": 2, "te')  # a crash mid-append
    with caplog.at_level(logging.WARNING, logger="goose_api.storage.jsonl"):
        jsonl.append(path, {"n": 3})
        assert path.read_bytes().endswith(b'{"n": 2, "te\n{"n":3}\n')
        assert jsonl.read(path) == [{"n": 1}, {"n": 3}]
        assert jsonl.read(path) == [{"n": 1}, {"n": 3}]
    skipped = [r for r in caplog.records if "not JSON" in r.getMessage()]
    assert len(skipped) == 1, "each bad line is logged once, however many readers meet it"
    assert any("did not end in a newline" in r.getMessage() for r in caplog.records)


def test_a_rewrite_replaces_the_lines_and_none_removes_the_file(tmp_path):
    path = tmp_path / "queue.jsonl"
    jsonl.append(path, {"n": 1}, {"n": 2})
    jsonl.rewrite(path, [{"n": 2}])
    assert jsonl.read(path) == [{"n": 2}] and stat.S_IMODE(path.stat().st_mode) == 0o600
    jsonl.rewrite(path, [])
    assert not path.exists()


def test_a_short_write_fails_loudly_and_the_next_append_lands_whole(tmp_path):
    """RLIMIT_FSIZE makes the kernel write only part of a line (a full disk does the same): the append raises,
    leaves a fragment, and once there is room again the next entry starts on a line of its own."""
    path = tmp_path / "log.jsonl"
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from goose_api.storage import jsonl
        path = Path({str(path)!r})
        jsonl.append(path, {{"n": 1}})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit: a short write, then EFBIG
        size = path.stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, resource.RLIM_INFINITY))
        try:
            jsonl.append(path, {{"n": 2, "padding": "x" * 100}})
        except OSError as exc:
            print("raised", exc.errno)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        jsonl.append(path, {{"n": 3}})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("raised"), done.stdout
    raw = path.read_bytes()
    assert raw == b'{"n":1}\n{"n":2,"pa\n{"n":3}\n', raw  # 10 bytes fitted: the rest never landed
    assert jsonl.read(path) == [{"n": 1}, {"n": 3}]
