"""The services of the app answering the current request (``create_app`` keeps them on the app)."""

from __future__ import annotations

from flask import current_app

from goose_api.services import Services


def services() -> Services:
    return current_app.extensions["goose_api"]
