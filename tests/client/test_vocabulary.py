"""The client keeps its own copy of the API's values (it imports no server code): they must be the server's."""

from __future__ import annotations

import goose_api.client as client
from goose_api.client import http as client_http
from goose_api.runs import turns
from goose_api.sessions import transfer
from goose_api.web import idempotency


def test_the_clients_copies_of_the_api_values_are_the_servers():
    assert client.IF_BUSY == turns.IF_BUSY
    assert client.EXPORT_FORMATS == transfer.EXPORT_FORMATS
    assert client.IMPORT_FORMATS == transfer.IMPORT_FORMATS


def test_the_client_sends_the_idempotency_header_the_server_reads():
    assert client_http.IDEMPOTENCY_HEADER == idempotency.HEADER
