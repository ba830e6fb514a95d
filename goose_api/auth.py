"""API keys: who is calling.

Every route but the public ones needs a key in ``x-api-key`` (or
``Authorization: Bearer``). Keys are compared in constant time. With no key
configured, one is generated on first start and kept in the data dir (mode
0600), so a fresh install is never open.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from pathlib import Path

from goose_api.errors import ConfigurationError, Unauthorized
from goose_api.settings import Settings
from goose_api.storage.secret_file import stored_secret

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Client:
    """The holder of a key: its name (never the key itself) and whether it sees everything."""

    name: str
    admin: bool = False


class KeyRing:
    def __init__(self, keys: dict[str, Client]):
        self._keys = [(key.encode(), client) for key, client in keys.items()]

    @classmethod
    def from_settings(cls, settings: Settings, generated_key: Path) -> "KeyRing":
        """The configured keys; with none, one generated into ``generated_key`` (loopback hosts only)."""
        keys: dict[str, Client] = {}
        for entry in settings.api_keys:
            keys[str(entry["key"])] = Client(str(entry["name"]), bool(entry.get("admin", False)))
        if settings.api_key:
            keys[settings.api_key] = Client("default", admin=True)
        if not keys:
            if settings.host not in LOOPBACK_HOSTS:
                raise ConfigurationError(
                    f"Refusing to listen on {settings.host} without an API key: set GOOSE_API_KEY "
                    "(or api_key / api_keys in config.yaml)")
            keys[stored_secret(generated_key, "API key")] = Client("default", admin=True)
        return cls(keys)

    def identify(self, presented: str | None) -> Client:
        """The client a presented key belongs to.

        Raises:
            Unauthorized: missing or unknown key.
        """
        if not presented:
            raise Unauthorized("Missing API key: send it in the x-api-key header")
        candidate = presented.encode()
        found = None
        for key, client in self._keys:  # check every key so timing does not tell which matched
            if hmac.compare_digest(candidate, key):
                found = client
        if found is None:
            raise Unauthorized("Invalid API key")
        return found


def presented_key(headers) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
