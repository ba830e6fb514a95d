"""The current request's services (``create_app`` keeps them on the app), caller, and the sessions it may use."""

from __future__ import annotations

from flask import current_app, g

from goose_api.auth import Client
from goose_api.services import Services


def services() -> Services:
    return current_app.extensions["goose_api"]


def caller() -> Client:
    """The client whose key the request carries (the hooks identified it)."""
    return g.client


def owned(session_id: str) -> str:
    """A session id the caller may use: the one access check before any service sees the id.

    Raises:
        BadRequest: a malformed id. SessionNotFound: no such session, or another key's (the same 404).
    """
    return services().access.check(session_id, g.client)
