"""The objects one worker process serves requests with, built by ``create_app``.

Blueprints reach them through ``services()``; nothing is global.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import current_app

from goose_api.agent import Agent
from goose_api.approvals import ApprovalPolicy, ToolPermissions
from goose_api.auth import KeyRing
from goose_api.auth_throttle import AuthThrottle
from goose_api.context import ContextManager
from goose_api.event_log import LogSignal
from goose_api.idempotency import IdempotencyStore
from goose_api.journal import RunJournal
from goose_api.mcp.registry import ExtensionRegistry
from goose_api.metrics import InstrumentedTools, Metrics
from goose_api.owners import SessionOwners
from goose_api.provider_config import ProviderConfig
from goose_api.run_recovery import RunRecovery
from goose_api.run_state import RunStateStore
from goose_api.runs import RunService
from goose_api.session_catalog import SessionCatalog
from goose_api.session_transfer import SessionTransfer
from goose_api.sessions import SessionStore
from goose_api.settings import Settings
from goose_api.summaries import Summarizer
from goose_api.turns import TurnService
from goose_api.webhooks import WebhookOutbox

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    keys: KeyRing
    store: SessionStore
    providers: ProviderConfig
    registry: ExtensionRegistry
    agent: Agent
    runs: RunService
    turns: TurnService
    metrics: Metrics
    owners: SessionOwners
    throttle: AuthThrottle
    catalog: SessionCatalog
    summarizer: Summarizer
    idempotency: IdempotencyStore
    webhooks: WebhookOutbox
    transfer: SessionTransfer
    recovery: RunRecovery
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        data = settings.data_path
        data.mkdir(parents=True, exist_ok=True)
        keys = KeyRing.from_settings(settings)
        store = SessionStore(settings.sessions_path, data / "locks")
        metrics = Metrics(settings, lambda: len(store.list_ids()))
        providers = ProviderConfig(settings, on_event=metrics.provider_event)
        registry = ExtensionRegistry(settings)
        tools = InstrumentedTools(registry, metrics)
        policy = ApprovalPolicy(settings.mode, ToolPermissions(data / "permissions.json"))
        context = ContextManager(settings)
        agent = Agent(store, providers.provider, tools, context, policy, settings.max_turns)
        state = RunStateStore(data, LogSignal(), settings.run_lease_timeout)
        webhooks = WebhookOutbox(data, settings.webhook_secret, retries=settings.webhook_retries,
                                 first_wait=settings.webhook_retry_wait, timeout=settings.webhook_timeout)
        runs = RunService(settings, store, agent, state, RunJournal(state.root), track=metrics.active_run,
                          on_final=webhooks.run_ended)
        turns = TurnService(store, runs, settings.working_dir or os.getcwd(), settings.allowed_roots)
        throttle = AuthThrottle(data / "auth_failures.sqlite3", settings.auth_failure_limit,
                                settings.auth_failure_window)
        idempotency = IdempotencyStore(data, settings.idempotency_ttl)
        recovery = RunRecovery(runs, auto_resume=settings.auto_resume,
                               interval=max(1.0, settings.run_lease_timeout / 2), housekeeping=(idempotency.sweep,))
        transfer = SessionTransfer(store, turns.check_working_dir, turns.default_working_dir, data / "tmp")
        services = cls(settings, keys, store, providers, registry, agent, runs, turns, metrics,
                       SessionOwners(data), throttle, SessionCatalog(store, runs, state),
                       Summarizer(store, runs, providers.provider, context), idempotency, webhooks,
                       transfer, recovery)
        # closed in reverse: the sweeper first, then runs (they may call tools), extensions, the rest
        services._closers.extend([throttle.close, webhooks.close, registry.close, runs.close, recovery.close])
        recovery.start()
        webhooks.start()
        return services

    def begin_shutdown(self) -> None:
        """SIGTERM reached this worker: let long-held requests (event streams) finish promptly."""
        self.runs.begin_shutdown()

    def close(self) -> None:
        """Stop what this process started (runs, then MCP servers); safe to call twice."""
        while self._closers:
            closer = self._closers.pop()
            closer()


def services() -> Services:
    return current_app.extensions["goose_api"]
