-- Identical failures arriving close together are logged as one row (issue 12): how
-- many requests a row stands for. The index on `at` serves the retention delete.
ALTER TABLE signin_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
CREATE INDEX signin_log_at ON signin_log (at);
