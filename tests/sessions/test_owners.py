"""The owners index: an append-only log every worker reads, a legacy index read first."""

from __future__ import annotations

import json

from goose_api.sessions.owners import SessionOwners
from goose_api.storage.data_dir import DataDir


def owners_in(data_dir) -> SessionOwners:
    data = DataDir.at(data_dir, data_dir / "sessions")
    return SessionOwners(data.owners, data.owners_legacy)


def test_claims_and_forgets_are_seen_by_every_reader(tmp_path):
    owners = owners_in(tmp_path)
    owners.claim("s1", "alice")
    owners.claim("s2", "bob")
    assert dict(owners.current()) == {"s1": "alice", "s2": "bob"}
    other_worker = owners_in(tmp_path)  # another process reading the same index
    other_worker.forget("s1")
    assert owners.owner("s1") is None and owners.owner("s2") == "bob"


def _claim_many(data_dir, prefix, count):
    owners = owners_in(data_dir)
    for n in range(count):
        owners.claim(f"{prefix}{n}", prefix)


def test_claims_from_many_workers_at_once_are_all_kept_and_seen(tmp_path):
    import multiprocessing
    reader = owners_in(tmp_path)
    assert reader.owner("w0-0") is None
    workers = [multiprocessing.get_context("fork").Process(target=_claim_many, args=(tmp_path, f"w{n}-", 40))
               for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert all(reader.owner(f"w{n}-{i}") == f"w{n}-" for n in range(4) for i in range(40))
    reader.forget("w1-3")
    assert owners_in(tmp_path).owner("w1-3") is None and reader.owner("w1-3") is None


def test_a_line_still_being_written_waits_and_an_older_index_is_read_first(tmp_path):
    (tmp_path / "owners.json").write_text(json.dumps({"old": "carol"}))
    owners = owners_in(tmp_path)
    assert owners.owner("old") == "carol"
    with open(tmp_path / "owners.jsonl", "ab") as log:
        log.write(b'{"session": "new", "own')  # a worker is in the middle of its write
        log.flush()
        assert owners.owner("new") is None
        log.write(b'er": "dave"}\n')
    assert owners.owner("new") == "dave" and owners.owner("old") == "carol"
