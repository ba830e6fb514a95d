"""The suite's own PostgreSQL and Redis servers (tests/support/services.py) are real and answer on loopback."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import psycopg


def test_the_redis_server_answers_ping(redis_server):
    parts = urlsplit(redis_server.url)
    assert parts.hostname == "127.0.0.1"
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"


def test_each_fresh_database_is_empty_migrated_and_its_own(postgres_server):
    first, second = postgres_server.fresh_database(), postgres_server.fresh_database()
    try:
        assert first != second and urlsplit(first).hostname == "127.0.0.1"
        with psycopg.connect(first) as conn:
            conn.execute("INSERT INTO kv (name, value) VALUES ('x', '1')")
            assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] >= 1
        with psycopg.connect(second) as conn:
            assert conn.execute("SELECT count(*) FROM kv").fetchone()[0] == 0
    finally:
        postgres_server.drop_database(first)
        postgres_server.drop_database(second)
