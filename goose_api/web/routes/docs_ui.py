"""``GET /docs``: Swagger UI over ``/openapi.json``, working offline.

The UI's files come from the installed ``swagger-ui-bundle`` package and are
served from here, never from a CDN; the page has no inline script (the start-up
code is ``/docs/init.js``), so its Content-Security-Policy can say
``script-src 'self'``. Like ``/openapi.json`` it needs no key: it describes the
API and holds no data; "Authorize" in the page takes the key for "Try it out".
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory, url_for
from markupsafe import escape
from swagger_ui_bundle import swagger_ui_path

blp = Blueprint("docs", __name__)

ASSETS = Path(str(swagger_ui_path))
SERVED = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})
PUBLIC_ENDPOINTS = frozenset({"docs.page", "docs.init", "docs.asset"})

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>goose-api</title>
<link rel="icon" type="image/png" href="{favicon}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui" data-spec-url="{spec}"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""

INIT = """window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false
  });
});
"""


@blp.route("/docs", methods=["GET"])
def page():
    asset = lambda name: escape(url_for("docs.asset", name=name))  # noqa: E731
    html = PAGE.format(favicon=asset("favicon-32x32.png"), css=asset("swagger-ui.css"),
                       bundle=asset("swagger-ui-bundle.js"), init=escape(url_for("docs.init")),
                       spec=escape(url_for("api-docs.openapi_json")))
    return Response(html, content_type="text/html; charset=utf-8")


@blp.route("/docs/init.js", methods=["GET"])
def init():
    return Response(INIT, content_type="text/javascript; charset=utf-8")


@blp.route("/docs/assets/<name>", methods=["GET"])
def asset(name: str):
    if name not in SERVED:
        abort(404)
    return send_from_directory(ASSETS, name, max_age=0)
