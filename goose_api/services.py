"""The objects one worker process serves requests with, built by ``create_app``.

The web package reaches them through ``goose_api.web.current.services()``; nothing is global.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from goose_api.agent.approvals import ApprovalPolicy
from goose_api.agent.context_window import ContextWindow
from goose_api.agent.loop import Agent
from goose_api.agent.summarizer import Summarizer
from goose_api.auth import KeyRing
from goose_api.backends import Stores, open_stores
from goose_api.errors import ConfigurationError
from goose_api.mcp.registry import ExtensionRegistry
from goose_api.ops.metrics import InstrumentedTools, Metrics
from goose_api.providers.selection import ProviderConfig
from goose_api.runs.broker import TurnBroker
from goose_api.runs.catalog import SessionCatalog
from goose_api.runs.leases import SessionLeases
from goose_api.runs.recovery import RunRecovery
from goose_api.runs.redis_link import RedisLink
from goose_api.runs.service import RunService
from goose_api.runs.signals import RedisChangeCounter, RedisLogSignal
from goose_api.runs.turns import TurnService
from goose_api.runs.webhooks import WebhookOutbox
from goose_api.sessions.access import SessionAccess
from goose_api.sessions.transfer import SessionTransfer
from goose_api.settings import Settings
from goose_api.storage.data_dir import DataDir
from goose_api.storage.interfaces import IdempotencyStorage, RunStorage, SessionStorage

log = logging.getLogger(__name__)


def cross_host_runs(redis: RedisLink, settings: Settings, state: RunStorage) -> dict[str, Any]:
    """What lets runs cross hosts through Redis: session leases and the turn queue; and, given to the run
    store before any log is opened, event wake-ups (pub/sub) and the steering counter.

    Raises:
        ConfigurationError: Redis cannot be reached at start-up (the message names REDIS_URL).
    """
    problem = redis.problem()
    if problem:
        raise ConfigurationError(f"{problem}; check REDIS_URL (or unset it to run turns in the web processes)")
    state.signal = RedisLogSignal(redis)
    state.steering = RedisChangeCounter(redis, "steering")
    return {"leases": SessionLeases(redis, settings.run_lease_timeout),
            "broker": TurnBroker(redis, settings.worker_queue, settings.run_lease_timeout)}


@dataclass
class Services:
    settings: Settings
    data: DataDir
    keys: KeyRing
    store: SessionStorage
    providers: ProviderConfig
    registry: ExtensionRegistry
    agent: Agent
    runs: RunService
    turns: TurnService
    metrics: Metrics
    access: SessionAccess
    catalog: SessionCatalog
    idempotency: IdempotencyStorage
    webhooks: WebhookOutbox
    transfer: SessionTransfer
    recovery: RunRecovery
    stores: Stores
    redis: RedisLink | None = None  # REDIS_URL: turns run in worker processes
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, role: str = "web") -> "Services":
        """Everything a process serves with; ``role`` is ``web`` (answers HTTP) or ``worker`` (runs queued turns).

        With ``REDIS_URL`` a web process hands every turn to the queue and
        delivers no webhook: the workers run the turns and deliver.

        Raises:
            ConfigurationError: the settings cannot work (a bad ``DATABASE_URL`` or ``REDIS_URL`` among them).
        """
        data = DataDir.at(settings.data_dir, settings.sessions_dir)
        data.root.mkdir(parents=True, exist_ok=True)
        keys = KeyRing.from_settings(settings, data.api_key)
        stores = open_stores(settings, data)
        store = stores.sessions
        metrics = Metrics(settings, lambda: len(store.list_ids()))
        providers = ProviderConfig(settings, stores.provider_choice, on_event=metrics.provider_event)
        registry = ExtensionRegistry(settings, stores.extensions)
        tools = InstrumentedTools(registry, metrics)
        policy = ApprovalPolicy(settings.mode, stores.permissions)
        context = ContextWindow(settings)
        agent = Agent(store, providers.provider, tools, context, policy, settings.max_turns,
                      settings.max_tool_output_chars)
        state = stores.runs
        redis = RedisLink(settings.redis_url) if settings.redis_url else None
        crossing = cross_host_runs(redis, settings, state) if redis is not None else {}
        webhooks = WebhookOutbox(stores.outbox, settings.webhook_secret, retries=settings.webhook_retries,
                                 first_wait=settings.webhook_retry_wait, timeout=settings.webhook_timeout,
                                 key_secrets={str(entry["name"]): str(entry["webhook_secret"])
                                              for entry in settings.api_keys if entry.get("webhook_secret")})
        runs = RunService(settings, store, agent, state, stores.journal, track=metrics.active_run,
                          on_final=webhooks.run_ended, queue=stores.queue, broker=crossing.get("broker"),
                          leases=crossing.get("leases"))
        # a new session never inherits the runs, journal or queue an old one of the same id left
        access = SessionAccess(store, stores.owners, on_created=state.delete)
        turns = TurnService(access, runs, settings.working_dir or os.getcwd(), settings.allowed_roots,
                            settings.private_paths())
        idempotency = stores.idempotency
        recovery = RunRecovery(runs, auto_resume=settings.auto_resume,
                               interval=max(1.0, settings.run_lease_timeout / 2), housekeeping=(idempotency.sweep,))
        transfer = SessionTransfer(access, turns.check_working_dir, turns.default_working_dir, data.tmp,
                                   max_bytes=settings.import_max_bytes, max_messages=settings.import_max_messages)
        catalog = SessionCatalog(access, runs, state, Summarizer(store, providers.provider, context))
        services = cls(settings, data, keys, store, providers, registry, agent, runs, turns, metrics, access,
                       catalog, idempotency, webhooks, transfer, recovery, stores, redis)
        # closed in reverse: the sweeper first, then runs (they may call tools), extensions, the stores last
        services._closers.append(stores.close)
        if redis is not None:
            services._closers.extend([redis.close, state.signal.close])
        services._closers.extend([webhooks.close, registry.close, runs.close, recovery.close])
        if settings.allowed_roots is None and any(not entry.get("admin") for entry in settings.api_keys):
            log.warning("allowed_roots is unset: keys without admin all work inside the default working dir %s "
                        "(where the developer tools may write); set allowed_roots and give each key a directory "
                        "of its own", turns.default_working_dir)
        recovery.start()
        if redis is None or role == "worker":
            webhooks.start()
        return services

    def on_close(self, closer: Callable[[], Any]) -> None:
        """Run ``closer`` when these services close (before what was built with them)."""
        self._closers.append(closer)

    def begin_shutdown(self) -> None:
        """SIGTERM reached this worker: let long-held requests (event streams) finish promptly."""
        self.runs.begin_shutdown()

    def close(self) -> None:
        """Stop what this process started (runs, then MCP servers); safe to call twice."""
        while self._closers:
            closer = self._closers.pop()
            closer()
