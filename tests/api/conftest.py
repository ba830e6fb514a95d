"""Every API test runs against both backends: files (the default) and PostgreSQL.

The ``backend`` fixture (autouse, parametrized ``files`` / ``postgresql``)
gives a PostgreSQL test a fresh database of its own and puts its URL in
``dirs["database_url"]``, which ``settings_for`` passes on, so the apps a test
builds (the ``app`` fixture or its own) use it. A test about the file layout
itself is marked ``files_only``.
"""

from __future__ import annotations

from typing import Iterator

import pytest

BACKENDS = ("files", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        files_only = metafunc.definition.get_closest_marker("files_only") is not None
        metafunc.parametrize("backend", BACKENDS[:1] if files_only else BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest, dirs) -> Iterator[str]:
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        url = server.fresh_database()
        dirs["database_url"] = url
        yield request.param
        server.drop_database(url)
    else:
        yield request.param
