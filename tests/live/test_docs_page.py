"""GET /docs: Swagger UI from the installed package, public, rendered by a real (headless) Chromium."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from swagger_ui_bundle import swagger_ui_path

from tests.support.app import ApiClient

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]  # offline but for us


def test_docs_and_the_spec_need_no_key(client):
    anonymous = ApiClient(client.flask, key=None)
    assert anonymous.get("/openapi.json")[0] == 200
    status, _, page = anonymous.get("/docs")
    assert status == 200 and page.headers["Content-Type"].startswith("text/html")


def test_the_page_loads_nothing_from_elsewhere(client):
    page = client.get("/docs")[2].get_data(as_text=True)
    init = client.get("/docs/init.js")[2].get_data(as_text=True)
    assert not re.search(r"https?://|//cdn", page + init)
    assert "<script>" not in page  # no inline script: the CSP allows 'self' only
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/docs/") for s in sources)
    for source in sources:
        response = client.get(source)[2]
        assert response.status_code == 200, source
        response.close()


def test_the_assets_are_the_installed_wheels_files(client):
    shipped = {str(f) for f in importlib.metadata.files("swagger-ui-bundle")}
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert any(f.endswith(f"/{name}") for f in shipped), f"{name} is not in the swagger-ui-bundle wheel"
        response = client.get(f"/docs/assets/{name}")[2]
        assert response.get_data() == (Path(str(swagger_ui_path)) / name).read_bytes()
        response.close()
    assert client.get("/docs/assets/..%2Fswagger-ui.js")[0] == 404
    assert client.get("/docs/assets/index.html")[0] == 404


@pytest.mark.browser
def test_chromium_renders_every_endpoint(live_server, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "headless Chromium is needed: apt-get install -y chromium (make test does it)"
    result = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                             "--virtual-time-budget=15000", "--dump-dom", live_server.url + "/docs"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    rendered = set(re.findall(r'data-path="([^"]+)"', result.stdout))
    spec = live_server.get("/openapi.json", key=None).json()
    assert rendered == set(spec["paths"]), (rendered, set(spec["paths"]))
    assert "Authorize" in result.stdout  # the key can be given for "Try it out"
