-- Discovery (issue 4): the stat-only scan index, the installed vLLM's registry per version,
-- and hub answers. Written only by the daemon's Discovery service (one writer).
CREATE TABLE discovery_index (
    path TEXT PRIMARY KEY,          -- a scan unit: model folder, GGUF folder or HF cache repo
    root TEXT NOT NULL,             -- the scan root it was found under
    fingerprint TEXT NOT NULL,      -- hash of the names, sizes and mtimes of its files (stat only)
    scanned_at REAL NOT NULL,
    entries TEXT NOT NULL           -- JSON list of the DiscoveredModels read from those files
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
