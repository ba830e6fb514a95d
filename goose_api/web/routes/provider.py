"""Provider endpoints: which provider and model the agent uses."""

from __future__ import annotations

from goose_api.web.api import ApiBlueprint
from goose_api.web.current import services
from goose_api.web.schemas.provider import ProviderConfigSchema, ProviderSwitchSchema

blp = ApiBlueprint("provider", __name__, description="The LLM provider and model")


@blp.route("/provider/config", methods=["GET"])
@blp.response(200, ProviderConfigSchema)
@blp.errors(401)
def show():
    """The provider and model in use (never a key)."""
    return services().providers.describe()


@blp.route("/provider/config", methods=["POST"])
@blp.arguments(ProviderSwitchSchema)
@blp.response(200, ProviderConfigSchema)
@blp.errors(400, 401, 403, 413, 415)
@blp.admin_only
def switch(body):
    """Switch provider and model for every worker."""
    return services().providers.switch(body["provider"], body.get("model"))
