"""stored_secret: a secret made once, kept 0600, and the same for every worker that starts with it."""

from __future__ import annotations

import multiprocessing
import stat

from goose_api.storage.secret_file import stored_secret


def _read_in_another_process(path, out):
    out.put(stored_secret(path, "test secret"))


def test_made_once_private_and_shared_by_workers_starting_together(tmp_path):
    path = tmp_path / "data" / "secret"
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    workers = [ctx.Process(target=_read_in_another_process, args=(path, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    seen = {out.get(timeout=30) for _ in workers}
    for worker in workers:
        worker.join(10)
    assert len(seen) == 1 and len(seen.pop()) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stored_secret(path, "test secret") == path.read_text().strip()


def test_a_secret_written_by_hand_is_used_as_it_is(tmp_path):
    path = tmp_path / "secret"
    path.write_text("  chosen-by-the-operator\n")
    assert stored_secret(path, "test secret") == "chosen-by-the-operator"
