-- S8: why a session's rating failed (rating_failed sessions keep their state for a retry).
ALTER TABLE sessions_log ADD COLUMN IF NOT EXISTS error String DEFAULT '' AFTER flags;

CREATE OR REPLACE VIEW sessions AS
SELECT * EXCEPT (state, log_partition) FROM sessions_log FINAL;
