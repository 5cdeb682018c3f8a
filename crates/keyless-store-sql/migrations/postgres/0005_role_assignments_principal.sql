-- Numbered as SQLite's 0005, which adds the index PostgreSQL has had since 0001.
CREATE INDEX IF NOT EXISTS role_assignments_principal ON role_assignments (principal_id);
