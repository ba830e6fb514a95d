"""Which provider and model the agent uses, and the provider instances.

The choice starts from settings and can be switched at run time through
``POST /provider/config``; a switch is written to the backend's ``ChoiceStorage``
(files: ``<data_dir>/provider.json``) so every worker process and a restarted
server see the same choice. Each
process keeps the instances of the last ``INSTANCES_KEPT`` choices (a switch
per model name must not pile up instances, each ``local`` one with a model
loaded); an older one is closed once its call in flight, if any, is done.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from goose_api.errors import BadRequest, ConfigurationError, NotReady
from goose_api.providers import PROVIDERS, configuration_problem, create_provider, default_model
from goose_api.providers.base import DEFAULT_PROVIDER, Provider, configured_model
from goose_api.providers.retry import RetryingProvider
from goose_api.settings import Settings
from goose_api.storage import atomic
from goose_api.storage.interfaces import ChoiceStorage

log = logging.getLogger(__name__)

INSTANCES_KEPT = 4


class FileChoice:
    """The switched-to choice in ``<data_dir>/provider.json`` (re-read only when the file changed)."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._override: dict[str, str] = {}

    def read(self) -> dict[str, str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._override, self._stamp = {}, None
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                data = {}
            self._override = data if isinstance(data, dict) else {}
            self._stamp = stamp
        return self._override

    def write(self, choice: dict[str, str]) -> None:
        atomic.write_json(self.path, choice)


class ProviderConfig:
    def __init__(self, settings: Settings, choice: ChoiceStorage, on_event=None):
        self.settings = settings
        self.on_event = on_event  # RetryingProvider's observer (metrics)
        self.choice = choice  # the switched-to choice, shared by every worker
        self._lock = threading.Lock()
        self._instances: OrderedDict[tuple[str, str], Provider] = OrderedDict()

    def current(self) -> tuple[str, str]:
        """(provider name, model) in effect now."""
        override = self.choice.read()
        name = override.get("provider") or self.settings.provider or DEFAULT_PROVIDER
        return name, override.get("model") or configured_model(self.settings, name) or default_model(name)

    def provider(self, choice: tuple[str, str] | None = None) -> Provider:
        """The provider instance for the current choice (or for ``choice``: one turn's own), built once per process.

        Raises:
            NotReady: the provider cannot be built (a credential or the model file is missing).
        """
        key = choice or self.current()
        evicted: list[Provider] = []
        with self._lock:
            instance = self._instances.get(key)
            if instance is None:
                try:
                    inner = create_provider(self.settings, key[0], key[1])
                except ConfigurationError as exc:
                    raise NotReady(str(exc)) from None
                instance = RetryingProvider(inner, self.settings, on_event=self.on_event)
                self._instances[key] = instance
                while len(self._instances) > INSTANCES_KEPT:
                    evicted.append(self._instances.popitem(last=False)[1])
            self._instances.move_to_end(key)
        for old in evicted:  # a local model's close waits for its call in flight: not on this request's time
            threading.Thread(target=old.close, name="provider-close", daemon=True).start()
        return instance

    def instances(self) -> int:
        """Provider instances this process keeps (diagnostics and tests)."""
        with self._lock:
            return len(self._instances)

    def problem(self) -> str | None:
        """Why the current provider cannot work (for start-up and readiness), or None."""
        return configuration_problem(self.settings, self.current()[0])

    def describe(self) -> dict[str, Any]:
        name, model = self.current()
        return {"provider": name, "model": model, "configured": self.problem() is None}

    def choose(self, name: str, model: str | None) -> tuple[str, str]:
        """A (provider, model) choice that can work, written nowhere (one turn's own, or a switch's).

        Raises:
            BadRequest: unknown provider, or its credentials are not set.
        """
        if name not in PROVIDERS:
            raise BadRequest(f"Unknown provider {name!r}; choose one of: {', '.join(sorted(PROVIDERS))}")
        problem = configuration_problem(self.settings, name)
        if problem:
            raise BadRequest(f"Provider {name} is not ready: {problem}")
        return name, model or default_model(name)

    def switch(self, name: str, model: str | None) -> dict[str, Any]:
        """Switch provider/model for every worker.

        Raises:
            BadRequest: unknown provider, or its credentials are not set.
        """
        name, model = self.choose(name, model)
        self.choice.write({"provider": name, "model": model})
        log.info("provider switched provider=%s model=%s", name, model)
        return self.describe()
