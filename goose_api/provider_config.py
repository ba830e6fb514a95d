"""Which provider and model the agent uses, and the provider instances.

The choice starts from settings and can be switched at run time through
``POST /provider/config``; a switch is written to ``<data_dir>/provider.json``
so every worker process and a restarted server see the same choice.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable

from goose_api import atomic
from goose_api.errors import BadRequest, ConfigurationError
from goose_api.providers import PROVIDERS, create_provider, default_model, missing_credentials
from goose_api.providers.base import Provider
from goose_api.providers.retry import RetryingProvider
from goose_api.settings import Settings

log = logging.getLogger(__name__)


class ProviderConfig:
    def __init__(self, settings: Settings, on_event: Callable[..., None] | None = None):
        self.settings = settings
        self.on_event = on_event  # RetryingProvider's observer (metrics)
        self.path = settings.data_path / "provider.json"
        self._lock = threading.Lock()
        self._instances: dict[tuple[str, str], Provider] = {}
        self._stamp: tuple[int, int] | None = None
        self._override: dict[str, str] = {}

    def current(self) -> tuple[str, str]:
        """(provider name, model) in effect now."""
        override = self._read_override()
        name = override.get("provider") or self.settings.provider or "local"
        if "model" in override:
            model = override["model"]
        elif name == (self.settings.provider or "local") and self.settings.model:
            model = self.settings.model
        else:
            model = default_model(name)
        return name, model

    def provider(self) -> Provider:
        """The provider instance for the current choice, built once per process."""
        key = self.current()
        with self._lock:
            instance = self._instances.get(key)
            if instance is None:
                instance = RetryingProvider(create_provider(self.settings, key[0], key[1]), self.settings,
                                            on_event=self.on_event)
                self._instances[key] = instance
            return instance

    def describe(self) -> dict[str, Any]:
        name, model = self.current()
        return {"provider": name, "model": model, "configured": not missing_credentials(self.settings, name)}

    def switch(self, name: str, model: str | None) -> dict[str, Any]:
        """Switch provider/model for every worker.

        Raises:
            BadRequest: unknown provider, or its credentials are not set.
        """
        if name not in PROVIDERS:
            raise BadRequest(f"Unknown provider {name!r}; choose one of: {', '.join(sorted(PROVIDERS))}")
        missing = missing_credentials(self.settings, name)
        if missing:
            raise BadRequest(f"Provider {name} is not configured: set {', '.join(missing)} and restart")
        model = model or default_model(name)
        try:
            create_provider(self.settings, name, model)
        except ConfigurationError as exc:
            raise BadRequest(str(exc)) from None
        atomic.write_json(self.path, {"provider": name, "model": model})
        log.info("provider switched provider=%s model=%s", name, model)
        return self.describe()

    def _read_override(self) -> dict[str, str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._override, self._stamp = {}, None
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(Path(self.path).read_text())
            except (OSError, ValueError):
                data = {}
            self._override = data if isinstance(data, dict) else {}
            self._stamp = stamp
        return self._override
