"""Extension endpoints: the MCP servers whose tools the agent may call."""

from __future__ import annotations

from goose_api.mcp.config import VARIANTS, load_extension_config
from goose_api.web.api import ApiBlueprint
from goose_api.web.current import services
from goose_api.web.errors import seed_error_shape
from goose_api.web.request_body import json_body
from goose_api.web.schemas.extensions import (
    ExtensionDetailsSchema,
    ExtensionErrorSchema,
    ExtensionNameSchema,
    ExtensionNamesSchema,
    ExtensionResultSchema,
    load_extension_name,
)

blp = ApiBlueprint("extensions", __name__, description="MCP extensions: the agent's tools")

OK = {"error": False, "message": None}
VARIANT_COMPONENTS = {"stdio": "StdioExtension", "sse": "SseExtension", "streamable_http": "StreamableHttpExtension",
                      "builtin": "BuiltinExtension"}
CONFIG_BODY = {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in VARIANT_COMPONENTS.values()],
    "discriminator": {"propertyName": "type", "mapping": {
        tag: f"#/components/schemas/{name}" for tag, name in VARIANT_COMPONENTS.items()}}}}}}
NAME_BODY = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
    {"type": "string", "minLength": 1}, {"$ref": "#/components/schemas/ExtensionName"}]}}}}


def register_schemas(spec) -> None:
    """The ExtensionConfig variants as named components, for the add route's oneOf."""
    for schema in VARIANTS.values():
        spec.components.schema(schema.__name__.removesuffix("Schema"), schema=schema)
    spec.components.schema("ExtensionName", schema=ExtensionNameSchema)


def _seed_errors(*statuses: int):
    def decorate(func):
        for status in statuses:
            func = blp.alt_response(status, schema=ExtensionErrorSchema)(func)
        return func
    return decorate


@blp.route("/extensions/list", methods=["GET"])
@blp.response(200, ExtensionNamesSchema)
@blp.errors(401)
def names():
    """Names of the enabled extensions."""
    return {"extensions": services().registry.names()}


@blp.route("/extensions", methods=["GET"])
@blp.response(200, ExtensionDetailsSchema)
@blp.errors(401)
def details():
    """Each extension's type, status, tools and last error (never its secrets)."""
    return {"extensions": services().registry.details()}


@blp.route("/extensions/add", methods=["POST"])
@blp.doc(requestBody=CONFIG_BODY)
@blp.response(200, ExtensionResultSchema)
@_seed_errors(400, 401, 403, 413, 415, 502)
@seed_error_shape
@blp.admin_only
def add():
    """Add (or replace) an extension: connects and lists its tools before answering."""
    services().registry.add(load_extension_config(json_body()))
    return OK


@blp.route("/extensions/remove", methods=["POST"])
@blp.doc(requestBody=NAME_BODY)
@blp.response(200, ExtensionResultSchema)
@_seed_errors(400, 401, 403, 404, 413, 415)
@seed_error_shape
@blp.admin_only
def remove():
    """Remove an extension and stop its server. The body is the name: ``"mcp_say"`` or ``{"name": ...}``."""
    services().registry.remove(load_extension_name(json_body()))
    return OK
