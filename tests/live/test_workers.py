"""Two web hosts and two workers sharing only PostgreSQL and Redis (tests/support/cluster.py).

Each web is a real gunicorn with its own HOME and data dir; each worker runs
the Procfile's ``worker:`` line. A turn started on one web is followed,
streamed and continued on the other; a web whose disk is wiped serves the same
sessions; a worker killed with SIGKILL in a provider call or a tool call has
its run finished by the other worker, without running the tool again or
saving a message twice; 20 turns run at once across both webs and both
workers; PostgreSQL restarted and Redis away for a moment give 503
``not_ready`` and then serve again by themselves.
"""

from __future__ import annotations

import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

import pytest
import requests

from tests.api.test_webhooks import SECRET, Receiver
from tests.fakes.core import Reply
from tests.live.test_runs import kill_hard, shell
from tests.support.app import API_KEY
from tests.support.cluster import Cluster
from tests.support.gates import Gate, Quorum
from tests.support.mcp_fixtures import wait_until
from tests.support.sse_reader import parse

pytestmark = pytest.mark.timeout(300)  # a cluster of four processes starts in each test

AUTH = {"x-api-key": API_KEY}
RECOVERY = 90.0  # bound for a dead worker's run to be finished (lease 3 s, then Dramatiq's redelivery)


@contextmanager
def running_cluster(tmp_path, fake_openai, database_url, redis_url, **settings: str) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, fake_openai, database_url, redis_url, settings={
        "GOOSE_API_RUN_LEASE_TIMEOUT": "3", "GOOSE_API_RUN_HEARTBEAT_INTERVAL": "1",
        "GOOSE_API_WORKER_THREADS": "10", "GOOSE_API_WORKER_QUEUE": f"turns-{uuid.uuid4().hex[:8]}", **settings})
    try:
        cluster.start_web()
        cluster.start_web()
        cluster.start_worker()
        cluster.start_worker()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(tmp_path, fake_openai, database_url, redis_url):
    with running_cluster(tmp_path, fake_openai, database_url, redis_url) as cluster:
        yield cluster


def sid() -> str:
    return "s" + uuid.uuid4().hex[:10]


def detail(web, session_id: str) -> dict:
    answer = web.get(f"/session/{session_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def settled(web, session_id: str, timeout: float = RECOVERY) -> dict:
    """The session once its last run has ended (idle), answered by ``web``."""
    return wait_until(lambda: (d := detail(web, session_id))["state"] == "idle" and d, timeout, "the run to end")


def texts(session: dict) -> list[tuple[str, str]]:
    return [(m["role"], " ".join(c.get("text", "") for c in m["content"] if c["type"] == "text"))
            for m in session["messages"]]


def test_a_turn_started_on_one_web_is_streamed_polled_and_continued_on_the_other(cluster, fake_openai):
    one, two = cluster.webs
    session_id, gate = sid(), Gate()
    fake_openai.add(Reply("the first answer", gate=gate))
    started = one.post("/session/start", {"prompt": "hello", "session_id": session_id, "async": True})
    assert started.status_code == 202, started.text
    gate.wait_reached()
    assert detail(two, session_id)["state"] == "running"  # the other host sees the run in flight
    stream = requests.get(f"{two.url}/session/{session_id}/events", headers=AUTH, stream=True, timeout=60)
    gate.open()
    events = list(parse(stream.iter_lines(decode_unicode=True)))
    assert events[-1].type == "done" and events[-1].data["response"] == "the first answer"
    again = requests.get(f"{one.url}/session/{session_id}/events", stream=True, timeout=60,
                         headers={**AUTH, "Last-Event-ID": str(events[0].id)})
    assert [e.id for e in parse(again.iter_lines(decode_unicode=True))] == [e.id for e in events[1:]]
    fake_openai.add(Reply("the second answer"))
    reply = two.post("/session/reply", {"prompt": "and again", "session_id": session_id})
    assert reply.status_code == 200 and reply.json()["response"] == "the second answer", reply.text
    assert texts(detail(one, session_id)) == [("user", "hello"), ("assistant", "the first answer"),
                                              ("user", "and again"), ("assistant", "the second answer")]
    assert session_id in {s["id"] for s in one.get("/sessions").json()["sessions"]}


def test_a_web_whose_disk_is_wiped_serves_the_same_sessions_and_idempotency_keys(cluster, fake_openai):
    session_id, key = sid(), str(uuid.uuid4())
    fake_openai.add(Reply("kept in the database"))
    body = {"prompt": "remember", "session_id": session_id}
    first = cluster.webs[0].post("/session/start", body, headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    cluster.wipe_web(0)
    assert texts(detail(cluster.webs[0], session_id)) == [("user", "remember"), ("assistant", "kept in the database")]
    for web in cluster.webs:  # the retry is answered from the database, by either host: no second turn
        retry = web.post("/session/start", body, headers={"Idempotency-Key": key})
        assert retry.status_code == 200 and retry.json()["run_id"] == first.json()["run_id"], retry.text
    fake_openai.add(Reply("still here"))
    reply = cluster.webs[0].post("/session/reply", {"prompt": "again", "session_id": session_id})
    assert reply.status_code == 200 and reply.json()["response"] == "still here", reply.text


def test_a_worker_killed_in_a_provider_call_has_its_run_finished_by_the_other(cluster, fake_openai):
    session_id, gate = sid(), Gate()
    fake_openai.add(Reply("never delivered", gate=gate), Reply("finished by the other worker"))
    started = cluster.webs[0].post("/session/start", {"prompt": "go", "session_id": session_id, "async": True})
    gate.wait_reached()
    owner = cluster.owner_of(started.json()["run_id"])
    cluster.kill(owner)
    gate.open()  # its answer goes to a dead worker
    session = settled(cluster.webs[1], session_id)
    assert texts(session) == [("user", "go"), ("assistant", "finished by the other worker")]  # saved once each
    survivor = next(w for w in cluster.workers if w is not owner)
    wait_until(lambda: f"interrupted run resumed by a worker session={session_id}" in survivor.log(), 30,
               "the survivor's log line")
    assert [r.body["messages"][-1]["content"] for r in fake_openai.requests] == ["go", "go"]


def test_a_worker_killed_in_a_tool_call_never_runs_the_tool_again(cluster, fake_openai):
    session_id = sid()
    marker = cluster.work / f"{session_id}.txt"
    fake_openai.add(Reply("", tool_calls=[shell(f"echo ran >> {marker.name} && sleep 30", "t1")]),
                    Reply("the tool was cut short"))
    started = cluster.webs[0].post("/session/start", {"prompt": "run it", "session_id": session_id, "async": True})
    wait_until(lambda: marker.exists() and marker.read_text() == "ran\n", 60, "the tool call")
    cluster.kill(cluster.owner_of(started.json()["run_id"]))
    session = settled(cluster.webs[1], session_id)
    assert marker.read_text() == "ran\n"  # once: the resume did not run it again
    roles = [m["role"] for m in session["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"], roles
    result = session["messages"][2]["content"][0]
    assert result["type"] == "toolResponse" and result["id"] == "t1"
    assert texts(session)[-1] == ("assistant", "the tool was cut short")


def test_twenty_turns_at_once_across_both_webs_and_both_workers(cluster, fake_openai):
    quorum = Quorum(20)  # every provider call waits until all 20 are in flight: 10 threads per worker
    fake_openai.add(*[Reply("done", gate=quorum) for _ in range(20)])
    ids = [sid() for _ in range(20)]

    def turn(index: int) -> requests.Response:
        return cluster.webs[index % 2].post("/session/start", {"prompt": f"turn {index}", "session_id": ids[index]})

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(turn, range(20)))
    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers if a.status_code != 200]
    assert quorum.arrived == 20 and all(a.json()["response"] == "done" for a in answers)
    for index, session_id in enumerate(ids):
        assert texts(detail(cluster.webs[(index + 1) % 2], session_id)) == [("user", f"turn {index}"),
                                                                            ("assistant", "done")]
    assert all("queued run claimed" in worker.log() for worker in cluster.workers)


def test_postgresql_restarted_mid_run(cluster, fake_openai, postgres_server):
    session_id, gate = sid(), Gate()
    fake_openai.add(Reply("after the restart", gate=gate))
    started = cluster.webs[0].post("/session/start", {"prompt": "survive", "session_id": session_id, "async": True})
    assert started.status_code == 202, started.text
    gate.wait_reached()
    postgres_server.restart()
    gate.open()
    session = wait_until(lambda: _settled_or_none(cluster.webs[1], session_id), RECOVERY, "the run to end")
    assert session["state"] == "idle" and session["last_error"] is None, session  # the pool reconnected
    assert texts(session) == [("user", "survive"), ("assistant", "after the restart")]


def _settled_or_none(web, session_id: str) -> dict | None:
    answer = web.get(f"/session/{session_id}")
    if answer.status_code == 503:
        assert answer.json()["error"] == "not_ready" and answer.headers["Retry-After"]
        return None
    body = answer.json()
    return body if body["state"] in ("idle", "failed", "interrupted") else None


def test_redis_away_for_a_moment_is_503_then_serves_again(cluster, fake_openai, redis_server):
    web = cluster.webs[0]
    redis_server.pause()
    try:
        refused = web.post("/session/start", {"prompt": "queued?", "session_id": sid()})
        assert refused.status_code == 503 and refused.json()["error"] == "not_ready", refused.text
        assert refused.headers["Retry-After"]
        ready = web.get("/ready")
        assert ready.status_code == 503 and ready.headers["Retry-After"]
        assert [c["name"] for c in ready.json()["checks"] if not c["ok"]] == ["redis"]
        assert web.get("/health").status_code == 200
    finally:
        redis_server.resume()
    wait_until(lambda: web.get("/ready").status_code == 200, 30, "/ready to recover")
    fake_openai.add(Reply("back"))
    answer = wait_until(lambda: _started(web), 60, "a turn to run again")
    assert answer.json()["response"] == "back"


def _started(web) -> requests.Response | None:
    answer = web.post("/session/start", {"prompt": "again", "session_id": sid()})
    return answer if answer.status_code == 200 else None


def test_a_web_killed_mid_request_loses_nothing(cluster, fake_openai):
    session_id, gate = sid(), Gate()
    fake_openai.add(Reply("the worker kept going", gate=gate))
    waiting = threading.Thread(target=lambda: _ignore(cluster.webs[0].post, "/session/start",
                                                      {"prompt": "keep", "session_id": session_id}))
    waiting.start()
    gate.wait_reached()
    kill_hard(cluster.webs[0])
    waiting.join(30)
    gate.open()
    session = settled(cluster.webs[1], session_id)
    assert texts(session) == [("user", "keep"), ("assistant", "the worker kept going")]


def _ignore(call, *args) -> None:
    try:
        call(*args)
    except requests.RequestException:
        pass  # the web it waited on was killed


def test_cancel_and_if_busy_sent_to_the_other_web_steer_the_workers_run(cluster, fake_openai):
    one, two = cluster.webs
    session_id, held, next_held = sid(), Gate(), Gate()
    fake_openai.add(Reply("never delivered", gate=held))
    assert one.post("/session/start", {"prompt": "first", "session_id": session_id, "async": True}).status_code == 202
    held.wait_reached()
    cancelled = two.post(f"/session/{session_id}/cancel", {})
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"], cancelled.text
    held.open()
    fake_openai.add(Reply("the second", gate=next_held), Reply("the queued third"), Reply("the interrupting fourth"))
    second = one.post("/session/reply", {"prompt": "second", "session_id": session_id, "async": True})
    assert second.status_code == 202, second.text
    next_held.wait_reached()
    queued = two.post("/session/reply", {"prompt": "third", "session_id": session_id, "if_busy": "enqueue"})
    assert queued.status_code == 202 and queued.json()["status"] == "queued", queued.text
    assert [q["run_id"] for q in detail(one, session_id)["queued_runs"]] == [queued.json()["run_id"]]
    next_held.open()
    session = settled(one, session_id)
    assert texts(session)[-4:] == [("user", "second"), ("assistant", "the second"),
                                   ("user", "third"), ("assistant", "the queued third")]
    last = one.post("/session/reply", {"prompt": "fourth", "session_id": session_id, "if_busy": "interrupt"})
    assert last.status_code == 200 and last.json()["response"] == "the interrupting fourth", last.text


def test_an_approval_asked_through_one_web_is_confirmed_on_the_other(tmp_path, fake_openai, database_url,
                                                                      redis_url):
    with running_cluster(tmp_path, fake_openai, database_url, redis_url, GOOSE_API_MODE="approve") as cluster:
        session_id = sid()
        marker = cluster.work / f"{session_id}.txt"
        fake_openai.add(Reply("", tool_calls=[shell(f"echo ok >> {marker.name}", "c1")]), Reply("approved and ran"))
        waiting = cluster.webs[0].post("/session/start", {"prompt": "may I", "session_id": session_id})
        assert waiting.status_code == 200 and waiting.json()["status"] == "waiting_approval", waiting.text
        assert not marker.exists()
        done = cluster.webs[1].post(f"/session/{session_id}/confirm", {"id": "c1", "action": "allow_once"})
        assert done.status_code == 200 and done.json()["response"] == "approved and ran", done.text
        assert marker.read_text() == "ok\n"


def test_a_stopped_worker_hands_its_run_to_another(cluster, fake_openai):
    session_id, gate = sid(), Gate()
    marker = cluster.work / f"{session_id}.txt"
    fake_openai.add(Reply("", tool_calls=[shell(f"echo ran >> {marker.name}", "s1")], gate=gate),
                    Reply("finished elsewhere"))
    started = cluster.webs[0].post("/session/start", {"prompt": "deploy", "session_id": session_id, "async": True})
    gate.wait_reached()
    owner = cluster.owner_of(started.json()["run_id"])
    owner.process.send_signal(signal.SIGTERM)  # a deploy: the step in flight finishes, the next never starts
    gate.open()
    assert owner.process.wait(60) == 0
    session = settled(cluster.webs[1], session_id)
    assert texts(session)[-1] == ("assistant", "finished elsewhere")
    assert marker.read_text() == "ran\n"  # the tool ran once, on the worker that resumed the run
    survivor = next(w for w in cluster.workers if w is not owner)
    wait_until(lambda: f"interrupted run resumed by a worker session={session_id}" in survivor.log(), 30,
               "the survivor's log line")


def test_webhooks_are_delivered_by_the_workers_signed_and_retried(tmp_path, fake_openai, database_url, redis_url):
    receiver = Receiver([503])
    try:
        with running_cluster(tmp_path, fake_openai, database_url, redis_url, GOOSE_API_WEBHOOK_SECRET=SECRET,
                             GOOSE_API_WEBHOOK_RETRY_WAIT="0.2", GOOSE_API_WEBHOOK_URL=receiver.url) as cluster:
            fake_openai.add(Reply("hooked"))
            body = cluster.webs[0].post("/session/start", {"prompt": "x", "session_id": sid()}).json()
            wait_until(lambda: len(receiver.deliveries) == 2, 60, "the retry after the 503")
            (first, _), (second, _) = receiver.deliveries
            payload = receiver.payloads()[-1]
            assert (payload["type"], payload["run_id"], payload["data"]) == ("done", body["run_id"], body)
            assert first["X-Goose-Delivery"] == second["X-Goose-Delivery"] and receiver.rejected == []
            delivered = f"webhook delivered id={first['X-Goose-Delivery']}"
            wait_until(lambda: any(delivered in w.log() for w in cluster.workers), 30, "a worker's log line")
            assert not any("webhook" in web.log() for web in cluster.webs)  # web processes deliver nothing
    finally:
        receiver.close()
