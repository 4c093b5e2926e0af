-- Discovery (issue 4): the stat-only scan index, the installed vLLM's registry per version,
-- and hub answers. Written only by the daemon's Discovery service (one writer).
CREATE TABLE discovery_index (
    path TEXT PRIMARY KEY,          -- absolute path of a model folder, HF snapshot or GGUF file
    root TEXT NOT NULL,             -- the scan root it was found under
    fingerprint TEXT NOT NULL,      -- names, sizes and mtimes of the files it was read from
    scanned_at REAL NOT NULL,
    entry TEXT NOT NULL             -- JSON of the DiscoveredModel built from those files
);
CREATE INDEX discovery_index_root ON discovery_index (root);

CREATE TABLE discovery_registry (
    vllm_version TEXT PRIMARY KEY,  -- as importlib.metadata reports it, e.g. 0.32.0+cpu
    python TEXT NOT NULL,           -- the interpreter that answered
    checked_at REAL NOT NULL,
    payload TEXT NOT NULL           -- JSON {archs, tool_parsers, reasoning_parsers}
);

CREATE TABLE discovery_hub (
    repo_id TEXT PRIMARY KEY,
    fetched_at REAL NOT NULL,
    info TEXT NOT NULL              -- JSON HubInfo
);
