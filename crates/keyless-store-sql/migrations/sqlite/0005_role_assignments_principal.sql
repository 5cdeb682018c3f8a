-- The view is refreshed per principal after a role assignment changes (issue 13):
-- `role_assignments_of` reads one principal's rows. PostgreSQL has had this index
-- since 0001.
CREATE INDEX role_assignments_principal ON role_assignments (principal_id);
