-- Resource optimizer: calibration history. One row per engine start: what the estimator
-- predicted (raw, uncorrected) next to what vLLM reported in its log and cache_config_info.
-- Later estimates for the same model_key + vllm_version are corrected by the median
-- report/prediction ratio of the latest rows (vllm_mcp.core.calibration).
CREATE TABLE optimizer_calibration (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    model_key TEXT NOT NULL,
    vllm_version TEXT NOT NULL,
    device TEXT NOT NULL,
    platform TEXT NOT NULL,
    fixed_pool INTEGER NOT NULL,               -- 1: kv_cache_memory_bytes, 0: gpu_memory_utilization
    config TEXT NOT NULL,                      -- JSON: the EngineConfig
    predicted_kv_tokens INTEGER NOT NULL,
    reported_kv_tokens INTEGER,
    predicted_weights_bytes INTEGER NOT NULL,
    reported_weights_bytes INTEGER,
    predicted_graph_bytes INTEGER NOT NULL,
    reported_graph_bytes INTEGER,
    predicted_residual_bytes INTEGER NOT NULL,
    reported_residual_bytes INTEGER,
    report TEXT NOT NULL                       -- JSON: every field parsed from the start
);
CREATE INDEX optimizer_calibration_model ON optimizer_calibration (model_key, vllm_version, id);
