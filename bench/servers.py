"""Processes the benchmarks run: goose-api or a baseline app under gunicorn, and their memory.

Every server listens on loopback only, on a free port, with the project's own
``gunicorn.conf.py`` (so a baseline app gets exactly the same worker class,
workers, threads and keep-alive as goose-api). Memory is read from /proc:
PSS (proportional set size, which shares forked pages fairly between master
and workers) and the kernel's peak RSS (VmHWM).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import requests

from bench.report import ROOT

API_KEY = "bench-api-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path
    startup_s: float = 0.0
    headers: dict[str, str] = field(default_factory=lambda: {"x-api-key": API_KEY})

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers, timeout=kw.pop("timeout", 60), **kw)

    def post(self, path: str, json=None, **kw) -> requests.Response:
        return requests.post(self.url + path, json=json, headers=self.headers, timeout=kw.pop("timeout", 120), **kw)

    def pids(self) -> list[int]:
        """The gunicorn master and its workers (not the MCP servers the workers started)."""
        return [self.process.pid, *children(self.process.pid)]

    def extension_pids(self) -> list[int]:
        return [pid for worker in children(self.process.pid) for pid in descendants(worker)]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def base_env(data: Path, **extra: str) -> dict[str, str]:
    """A goose-api environment rooted in ``data`` (no user config is read)."""
    for sub in ("data", "sessions", "home", "work"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(data / "home"),
            "GOOSE_API_KEY": API_KEY, "GOOSE_API_DATA_DIR": str(data / "data"),
            "GOOSE_API_SESSIONS_DIR": str(data / "sessions"), "GOOSE_API_WORKING_DIR": str(data / "work"),
            "GOOSE_API_HOST": "127.0.0.1", **extra}


@contextmanager
def gunicorn(app: str, env: dict[str, str], log_dir: Path, timeout: float = 60, root: Path = ROOT) -> Iterator[Server]:
    """Run ``gunicorn <app> -c gunicorn.conf.py`` from the project tree ``root``; yields once ``/health`` answers 200."""
    port = free_port()
    env = {**env, "GOOSE_API_PORT": str(port), "PYTHONPATH": str(root)}
    log_path = log_dir / f"{app.replace(':', '_')}-{port}.log"
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", app, "-c", str(root / "gunicorn.conf.py")],
                               cwd=str(root), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    drain = threading.Thread(target=_drain, args=(process.stdout, log_path), daemon=True)
    drain.start()
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        server.startup_s = wait_healthy(server, started, timeout)
        yield server
    finally:
        stop(process)
        drain.join(10)


def _drain(pipe, log_path: Path) -> None:
    """Copy the server's output to its log file.

    The server writes into a pipe, as under systemd, Docker or a Procfile host,
    not into a file on the disk its sessions are fsynced to: there a log write
    can wait for another thread's fsync, and that is the disk's cost, not ours.
    """
    with open(log_path, "ab") as log:
        for chunk in iter(lambda: pipe.read1(65536), b""):
            log.write(chunk)
            log.flush()


def wait_healthy(server: Server, started: float, timeout: float) -> float:
    """Seconds from ``started`` until GET /health answered 200 (polled every 5 ms)."""
    session = requests.Session()
    while time.monotonic() - started < timeout:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        try:
            if session.get(server.url + "/health", timeout=2).status_code == 200:
                return time.monotonic() - started
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.005)
    raise RuntimeError(f"gunicorn did not answer /health within {timeout} s:\n{server.log()[-3000:]}")


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- memory --------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    """Child processes of ``pid``, whichever of its threads started them."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def descendants(pid: int) -> list[int]:
    out = []
    for child in children(pid):
        out.append(child)
        out.extend(descendants(child))
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return _status_kb(pid, "VmRSS")  # no smaps_rollup (old kernel): RSS overcounts shared pages


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by ``pids`` (threads included), from /proc/<pid>/stat."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def memory_mib(pids: list[int]) -> dict[str, float]:
    """PSS and RSS now, and peak RSS (VmHWM), summed over ``pids``, in MiB."""
    return {"pss_mib": round(sum(map(pss_kb, pids)) / 1024, 1),
            "rss_mib": round(sum(_status_kb(p, "VmRSS") for p in pids) / 1024, 1),
            "peak_rss_mib": round(sum(_status_kb(p, "VmHWM") for p in pids) / 1024, 1)}


class MemorySampler:
    """Samples the PSS of a process set every ``interval`` seconds; ``peak`` is the highest sum seen."""

    def __init__(self, pids_of, interval: float = 0.1):
        self.pids_of = pids_of
        self.interval = interval
        self.peak_pss_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_pss_mib = max(self.peak_pss_mib, memory_mib(self.pids_of())["pss_mib"])
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def export_tree(ref: str, dest: Path) -> Path:
    """The project as it was at git ``ref`` (``git archive``), to run a before/after comparison."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


@contextmanager
def scratch(prefix: str, base: str | None = None) -> Iterator[Path]:
    """A temp dir (in ``base``, else $TMPDIR) for one benchmark's data and logs (kept when BENCH_KEEP is set)."""
    path = Path(tempfile.mkdtemp(prefix=f"goose-bench-{prefix}-", dir=base))
    try:
        yield path
    finally:
        if not os.environ.get("BENCH_KEEP"):
            import shutil
            shutil.rmtree(path, ignore_errors=True)
