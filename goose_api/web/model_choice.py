"""The ``model`` the OpenAI dialects take: ``goose``, or ``goose:<provider>/<model>`` for one turn's own.

A turn's own model is used for that turn only; the server's provider (what
``POST /provider/config`` switches) stays as it is for everyone. Picking a
provider or model other than the server's is an admin key's right, as
switching the server's is: another key gets 403.
"""

from __future__ import annotations

from typing import Any

from goose_api.agent.options import TurnOptions
from goose_api.auth import Client
from goose_api.errors import BadRequest, Forbidden
from goose_api.providers.selection import ProviderConfig

MODEL = "goose"


def model_ids(providers: ProviderConfig) -> list[str]:
    """The model names a client can send: ``goose`` and the server's provider and model in full."""
    name, model = providers.current()
    return [MODEL, f"{MODEL}:{name}/{model}"]


def turn_options(providers: ProviderConfig, client: Client, model: Any, instructions: str | None) -> TurnOptions:
    """The turn's options for a request's ``model`` and instructions.

    Raises:
        BadRequest: not a model name of ours, or a provider that is unknown or not set up.
        Forbidden: a non-admin key picks another provider or model than the server's.
    """
    if not isinstance(model, str) or not model:
        raise BadRequest("model is required: send \"goose\" (or \"goose:<provider>/<model>\")",
                         details={"param": "model"})
    if model == MODEL:
        return TurnOptions(instructions=instructions or None)
    prefix, _, choice = model.partition(":")
    provider, slash, name = choice.partition("/")
    if prefix != MODEL or not slash or not provider or not name:
        raise BadRequest(f"Unknown model {model!r}: send \"goose\" for the server's model, or "
                         "\"goose:<provider>/<model>\" to pick one", details={"param": "model"})
    if (provider, name) != providers.current() and not client.admin:
        raise Forbidden("Only admin keys may pick another provider or model than the server's; send \"goose\"",
                        details={"param": "model"})
    try:
        provider, name = providers.choose(provider, name)
    except BadRequest as exc:
        raise BadRequest(exc.message, details={"param": "model"}) from None
    return TurnOptions(provider, name, instructions or None)
