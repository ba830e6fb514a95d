"""ChangeCounter: a change in one process is seen by every other at once, and no bump is lost."""

from __future__ import annotations

import multiprocessing

from goose_api.storage.change_counter import ChangeCounter


def _bump(path, times):
    counter = ChangeCounter(path)
    for _ in range(times):
        counter.bump()


def test_bumps_from_other_processes_are_seen_at_once_and_none_is_lost(tmp_path):
    path = tmp_path / "data" / "x.changes"
    reader = ChangeCounter(path)
    assert reader.value() == 0 and path.stat().st_size == 8
    ChangeCounter(path).bump()
    assert reader.value() == 1
    workers = [multiprocessing.get_context("fork").Process(target=_bump, args=(path, 50)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert reader.value() == 151
    reader.close()
