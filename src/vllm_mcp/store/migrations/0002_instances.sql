-- Supervised vLLM instances (one row per served name the daemon owns), every lifecycle
-- transition, and named load presets. Specs are JSON (core.engine_spec.EngineSpec.to_dict).
CREATE TABLE instances (
    name TEXT PRIMARY KEY NOT NULL,   -- served name
    model TEXT NOT NULL,
    spec TEXT NOT NULL,               -- JSON EngineSpec
    state TEXT NOT NULL,              -- core.lifecycle.State
    state_since REAL NOT NULL,
    created_at REAL NOT NULL,
    port INTEGER,
    pid INTEGER,                      -- process group leader (pgid == pid)
    argv TEXT NOT NULL DEFAULT '[]',  -- JSON list: what was launched (adoption matches it)
    log_path TEXT,
    log_offset INTEGER NOT NULL DEFAULT 0,
    loras TEXT NOT NULL DEFAULT '{}', -- JSON {adapter name: path}
    sleep_level INTEGER,              -- while sleeping: 1 or 2
    started_at REAL,
    ready_at REAL,
    last_error TEXT,                  -- JSON {message, code, exit_code, log_tail}
    restarts INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE instance_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL,           -- no FK: the history outlives the instance row
    at REAL NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX instance_transitions_by_instance ON instance_transitions (instance, id);

CREATE TABLE presets (
    name TEXT PRIMARY KEY NOT NULL,
    model TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL,               -- JSON: the engine fields that were given (None = default)
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
