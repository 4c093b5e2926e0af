-- Foundation: the audit log of every mutating call that reached the daemon.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,          -- 'cli', 'mcp:<server>', 'gateway', 'daemon'
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT                   -- JSON
);
CREATE INDEX audit_log_at ON audit_log (at);
