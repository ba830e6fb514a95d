"""Atomic writes: chunks land as one new file, in a directory made on demand, with no temp file left."""

from __future__ import annotations

import stat

from goose_api.storage import atomic


def test_chunks_replace_the_file_in_a_directory_made_on_demand(tmp_path):
    target = tmp_path / "new" / "dir" / "file.jsonl"
    atomic.write_bytes(target, b"line 1\n", bytearray(b"line 2\n"), mode=0o600)
    assert target.read_bytes() == b"line 1\nline 2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic.write_text(target, "é\n")
    assert target.read_text(encoding="utf-8") == "é\n"
    assert [p.name for p in target.parent.iterdir()] == ["file.jsonl"]
