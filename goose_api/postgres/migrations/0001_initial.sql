-- goose-api's state in PostgreSQL, version 1. Applied by `goose-api migrate` (goose_api/postgres/migrate.py).

-- Sessions: goose's metadata line as JSONB, and one row per message (saving a message inserts a row).
CREATE TABLE sessions (
    id          text PRIMARY KEY,
    metadata    jsonb NOT NULL,
    created     double precision NOT NULL,
    updated     double precision NOT NULL,
    version     bigint NOT NULL DEFAULT 1
);
CREATE INDEX sessions_by_updated ON sessions (updated DESC, id);

CREATE TABLE messages (
    session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    message     jsonb NOT NULL,
    PRIMARY KEY (session_id, position)
);

-- A session's history before a summary replaced it (goose JSONL, as the file backend's .bak files).
CREATE TABLE session_backups (
    session_id  text NOT NULL,
    taken       double precision NOT NULL,
    jsonl       text NOT NULL
);
CREATE INDEX session_backups_by_session ON session_backups (session_id, taken);

CREATE TABLE session_owners (
    session_id  text PRIMARY KEY,
    owner       text NOT NULL
);
CREATE INDEX session_owners_by_owner ON session_owners (owner);

-- A session's turn lock: a lease its holder's process keeps fresh.
CREATE TABLE session_locks (
    session_id  text PRIMARY KEY,
    token       text NOT NULL,
    holder      jsonb NOT NULL,
    heartbeat   double precision NOT NULL
);

-- Runs: the record of each session's current (or last) run, the runs' events, the journal, queued turns.
CREATE TABLE run_records (
    session_id  text PRIMARY KEY,
    record      jsonb NOT NULL,
    version     bigint NOT NULL DEFAULT 1
);

CREATE TABLE run_events (
    session_id  text NOT NULL,
    run_id      text NOT NULL,
    id          bigint NOT NULL,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    time        double precision NOT NULL,
    PRIMARY KEY (session_id, run_id, id)
);

CREATE TABLE run_journal (
    seq         bigserial PRIMARY KEY,
    session_id  text NOT NULL,
    turn        text,
    entry       jsonb NOT NULL
);
CREATE INDEX run_journal_by_turn ON run_journal (session_id, turn, seq);

CREATE TABLE run_queue (
    session_id  text NOT NULL,
    position    bigint NOT NULL,
    item        jsonb NOT NULL,
    PRIMARY KEY (session_id, position)
);

CREATE TABLE counters (
    name        text PRIMARY KEY,
    value       bigint NOT NULL
);

-- Idempotency-Key entries, by a hash of the client's name and the key.
CREATE TABLE idempotency (
    digest      text PRIMARY KEY,
    entry       jsonb NOT NULL,
    expires     double precision NOT NULL
);
CREATE INDEX idempotency_by_expiry ON idempotency (expires);

-- Settings changed at run time: the provider choice, the extensions document, generated secrets.
CREATE TABLE kv (
    name        text PRIMARY KEY,
    value       jsonb NOT NULL,
    version     bigint NOT NULL DEFAULT 1
);

-- The tools each API key (by name) chose to always allow.
CREATE TABLE tool_permissions (
    client      text NOT NULL,
    tool        text NOT NULL,
    PRIMARY KEY (client, tool)
);

CREATE TABLE webhook_deliveries (
    id          text PRIMARY KEY,
    delivery    jsonb NOT NULL,
    next_at     double precision NOT NULL,
    failed      boolean NOT NULL DEFAULT false
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE NOT failed;

-- The OpenAI Responses API's stored responses (each names its session and run).
CREATE TABLE responses (
    id          text PRIMARY KEY,
    record      jsonb NOT NULL
);

CREATE TABLE auth_failures (
    address     text PRIMARY KEY,
    started     double precision NOT NULL,
    count       integer NOT NULL
);
