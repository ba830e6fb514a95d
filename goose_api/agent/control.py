"""How the driver of a turn (the run service) steers the agent loop, and the steps of a tool call.

A tool call goes ``requested`` -> ``approved`` -> ``started`` -> ``finished``;
the loop reports each step through ``TurnControl.journal`` before it takes
effect, and a resumed turn learns through ``Recovery`` how far each call got.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

REQUESTED, APPROVED, STARTED, FINISHED = "requested", "approved", "started", "finished"


@dataclass(frozen=True)
class CallState:
    """Where one tool call of a turn got to."""

    call_id: str
    step: str
    response: dict[str, Any] | None = None   # the toolResponse item, once finished


class TurnControl(Protocol):
    """How the driver of a turn steers it."""

    cancel_event: threading.Event   # abandon the step in flight
    stop_event: threading.Event     # do not start another step; leave unanswered calls for a resume
    client: str | None              # the name of the key the turn runs for (its always_allow choices)

    def step(self, description: str) -> None:
        """What the turn is doing now (named in a cancel's answer)."""

    def cancelled_step(self) -> str:
        """What was running when the cancel arrived."""

    def decision(self, request: dict[str, Any]) -> str:
        """Block until the user allows or denies ``request``. Raises: TurnCancelled."""

    def journal(self, step: str, request: dict[str, Any], **data: Any) -> None:
        """Write a tool call's step to the run journal (before it takes effect)."""


class Recovery(Protocol):
    """What a resumed turn knows of the tool calls its interrupted run left unanswered."""

    ask_started: bool   # a call that started but did not finish waits for approval (else: interrupted text)

    def prior(self, call_id: str) -> CallState | None: ...
