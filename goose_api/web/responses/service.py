"""Responses over the turn and run services: create, wait, stream, poll, cancel.

A response starts a turn (``TurnService``: a new session, or a reply to the
session of ``previous_response_id`` / ``conversation``) or, with
``mcp_approval_response`` items, decides the tool calls its previous response
asked about (``RunService.confirm``): the same run goes on. Whoever reads the
run's events (the blocking request, a stream, a poll, in any worker) builds the
response from them (``output.py``) and, once it has its end, stores it settled.
The session's owner check (``SessionAccess``) guards every response: another
key's response is the same 404 as a missing one.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Iterator

from goose_api.auth import Client
from goose_api.errors import BadRequest, NoActiveRun, NotFound, ProviderError, SessionNotFound
from goose_api.runs.answers import waiting_payload
from goose_api.runs.state import WAITING, is_active
from goose_api.services import Services
from goose_api.web.model_choice import turn_options
from goose_api.web.responses.output import APPROVAL, DONE, OutputBuilder, approval_request_id, response_object
from goose_api.web.responses.request import ResponseRequest, invalid
from goose_api.web.responses.store import Record, ResponseStore, new_response_id

log = logging.getLogger(__name__)

LIVENESS_CHECK = 1.0   # how often a quiet reader checks that the run's owner is alive
RATE_LIMITED = (429, 503)


class ResponseService:
    def __init__(self, services: Services, store: ResponseStore):
        self.services = services
        self.runs = services.runs
        self.store = store

    # --- creating -----------------------------------------------------------------------

    def create(self, request: ResponseRequest, client: Client) -> Record:
        """Start the response's turn (or continue its run after approvals); the record, saved if stored.

        Raises:
            BadRequest, Forbidden: the request cannot be served as sent. NotFound: the previous response or
            the conversation is not the caller's. SessionBusy, NoActiveRun: the session is not where the
            request expects it.
        """
        options = turn_options(self.services.providers, client, request.model, request.instructions)
        previous = self.owned(request.previous_response_id, client, "previous_response_id") \
            if request.previous_response_id else None
        continued: dict[str, dict[str, Any]] = {}
        usage_base: dict[str, int] = {}
        stream = request.stream or request.background
        if request.approvals:
            if previous is None:
                raise invalid("mcp_approval_response items answer a response: send its previous_response_id",
                              "previous_response_id")
            ref, continued = self._decide(previous, request)
            usage_base = previous.get("run_usage") or {}
        elif previous is not None or request.conversation:
            session_id = previous["session_id"] if previous else self._conversation(request.conversation, client)
            if request.history:
                raise invalid("Earlier messages in input only start a new conversation; continue one with the new "
                              "user message alone", "input")
            ref = self.services.turns.reply(request.prompt, session_id, stream=stream, options=options,
                                            client=client.name)
        else:
            ref = self.services.turns.start(request.prompt, client, stream=stream, history=request.history,
                                            options=options)
        record = {"id": new_response_id(), "session_id": ref.session_id, "run_id": ref.run_id, "after": ref.after,
                  "created_at": int(time.time()), "model": request.model, "instructions": request.instructions,
                  "metadata": request.metadata, "previous_response_id": request.previous_response_id,
                  "store": request.store, "background": request.background, "continued": continued,
                  "usage_base": usage_base, "response": None}
        if request.store:
            self.store.save(record)
        log.info("response created id=%s session=%s run=%s", record["id"], ref.session_id, ref.run_id)
        return record

    def _conversation(self, session_id: str, client: Client) -> str:
        try:
            return self.services.access.check(session_id, client)
        except BadRequest as exc:
            raise invalid(exc.message, "conversation") from None

    def _decide(self, previous: Record, request: ResponseRequest):
        """Send the approvals to the run that asked; the run goes on (the first decision's ref)."""
        if previous.get("response") is None:
            self.snapshot(previous)  # settles it: a background response nobody polled has its requests then
        asked = {approval_request_id(entry["id"]): entry for entry in previous.get("approvals") or []}
        continued, ref = {}, None
        for n, approval in enumerate(request.approvals):
            entry = asked.get(approval.request_id)
            if entry is None:
                raise invalid(f"No approval request {approval.request_id!r} in response {previous['id']}",
                              f"input[{n}].approval_request_id")
            try:
                decided = self.runs.confirm(previous["session_id"], entry["id"],
                                            "allow_once" if approval.approve else "deny")
            except NoActiveRun:
                raise NoActiveRun(f"Response {previous['id']} no longer waits for approval (its turn ended or was "
                                  "decided already)") from None
            ref = ref or decided
            continued[entry["id"]] = {"tool": entry.get("tool"), "arguments": entry.get("arguments") or {},
                                      "approve": approval.approve}
        return ref, continued

    # --- finding ------------------------------------------------------------------------

    def owned(self, response_id: str, client: Client, param: str | None = None) -> Record:
        """A stored response of the caller's session.

        Raises:
            NotFound: no such response, or another key's (the same answer).
        """
        record = self.store.load(response_id)
        if record is not None:
            try:
                self.services.access.check(record["session_id"], client)
                return record
            except SessionNotFound:
                pass  # another key's, or its session was deleted
        raise NotFound(f"Response {response_id} not found", details={"param": param})

    # --- reading the run ------------------------------------------------------------------

    def snapshot(self, record: Record) -> dict[str, Any]:
        """The response as it stands now (settled and stored once the run reached its end)."""
        if record.get("response") is not None:
            return record["response"]
        builder = self._builder(record)
        for event in self._log(record).read(record["after"]):
            builder.feed(event)
            if builder.ended:
                return self._settle(record, builder)
        return response_object(record, builder.output, "in_progress")

    def wait(self, record: Record) -> dict[str, Any]:
        """Block until the response has its end; the settled response."""
        builder = self._builder(record)
        for _ in self._follow(record, builder):
            pass
        if builder.ended is None:  # this worker is stopping: the run goes on elsewhere
            return response_object(record, builder.output, "in_progress")
        return self._settle(record, builder)

    def stream(self, record: Record, starting_after: int = -1) -> Iterator[str]:
        """The response's streaming events as SSE, from the run's log (a replay first, when re-attaching)."""
        sequence = -1
        heartbeat = self.services.settings.sse_heartbeat
        quiet_since = time.monotonic()

        def frames(events: list[dict[str, Any]]) -> Iterator[str]:
            nonlocal sequence
            for event in events:
                sequence += 1
                if sequence > starting_after:
                    yield f"event: {event['type']}\ndata: {json.dumps({**event, 'sequence_number': sequence})}\n\n"

        start = response_object(record, [], "in_progress")
        yield from frames([{"type": "response.created", "response": start},
                           {"type": "response.in_progress", "response": start}])
        builder = self._builder(record)
        for events in self._follow(record, builder):
            if events:
                quiet_since = time.monotonic()
                yield from frames(events)
            elif time.monotonic() - quiet_since >= heartbeat:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
        if builder.ended is None:
            return  # the worker is stopping: the client re-attaches with starting_after
        final = self._settle(record, builder)
        kind = {"completed": "response.completed", "failed": "response.failed"}.get(final["status"],
                                                                                     "response.incomplete")
        yield from frames([{"type": kind, "response": final}])

    def cancel(self, record: Record, wait: bool = True) -> dict[str, Any]:
        """Cancel a background response's run; the response as it stands after (``cancelled`` once stopped,
        which ``wait`` waits for, ``CANCEL_WAIT`` at most).

        Raises:
            BadRequest: the response was not created in the background.
        """
        if not record["background"]:
            raise invalid("Only background responses can be cancelled", "response_id")
        current = self.snapshot(record)
        if current["status"] != "in_progress":
            return current
        run = self.runs.status(record["session_id"])
        if is_active(run) and run["run_id"] == record["run_id"]:
            try:
                self.runs.cancel(record["session_id"], wait=wait)
            except NoActiveRun:
                pass  # it ended meanwhile: the snapshot says how
        return self.snapshot(record)

    # --- helpers ---------------------------------------------------------------------------

    def _builder(self, record: Record) -> OutputBuilder:
        return OutputBuilder(record["id"][5:17], record.get("continued") or {})

    def _log(self, record: Record):
        try:
            return self.runs.log_of(record["session_id"], record["run_id"])[1]
        except (NotFound, SessionNotFound):
            raise NotFound(f"Response {record['id']} can no longer be read: its session's run history is gone") \
                from None

    def _follow(self, record: Record, builder: OutputBuilder) -> Iterator[list[dict[str, Any]]]:
        """The builder's events as the run goes on ([] on a quiet second), until the response ends."""
        reader = self._log(record).follow(record["after"])
        while builder.ended is None:
            events = reader.wait(LIVENESS_CHECK, self.runs.poll)
            made = [made for event in events for made in builder.feed(event)]
            yield made
            if not events:
                if self.runs.stopping.is_set():
                    return
                self.runs.status(record["session_id"])  # a dead owner's run gets its error event here

    def _settle(self, record: Record, builder: OutputBuilder) -> dict[str, Any]:
        """The final response of an ended builder, kept in the record (and stored)."""
        final, error, run_usage = builder.final or {}, None, None
        if builder.ended == DONE:
            status, run_usage = ("cancelled" if final.get("status") == "cancelled" else "completed"), final["usage"]
        elif builder.ended == APPROVAL:
            status, run_usage = "completed", self._usage_while_waiting(record)
        else:
            status = "failed"
            limited = final.get("kind") == ProviderError.RATE_LIMIT or final.get("http_status") in RATE_LIMITED
            error = {"code": "rate_limit_exceeded" if limited else "server_error",
                     "message": final.get("message") or "The run failed"}
        base = record.get("usage_base") or {}
        usage = None if run_usage is None else {k: max(0, int(v) - int(base.get(k) or 0)) for k, v in run_usage.items()}
        record.update(response=response_object(record, builder.output, status, usage, error, time.time()),
                      run_usage=run_usage, approvals=builder.approvals)
        if record["store"]:
            self.store.save(record)
        return record["response"]

    def _usage_while_waiting(self, record: Record) -> dict[str, int] | None:
        run = self.runs.status(record["session_id"])
        if run is None or run.get("run_id") != record["run_id"] or run.get("state") != WAITING:
            return None
        return waiting_payload(self.services.store, run)["usage"]
