-- Write generations: lets a replica's periodic resync tell whether it missed a change.
-- (PostgreSQL only: an SQLite database has one process, which always resyncs in full.)
--
-- Every transaction that changes a row of a table the in-memory view, the key ring or the
-- secret cache is built from takes one number from `keyless_generation`, at its first
-- changed row, and keeps it in the transaction-local setting `keyless.generation`. The
-- store's change notifications carry that number (`g<n>|<change>`), so a listener knows
-- which numbers it has been told about. A number it was never told about is a write it
-- missed, whoever made it: a session outside Keyless (a hand edit in psql), a replica of
-- an older version, or a transaction that changed a row and then rolled back (harmless:
-- one needless reload). The sequence never blocks (unlike a counter row, which would
-- serialise every writer and could deadlock with the row locks writers take in other
-- orders) and is not rolled back; numbers are handed out in start order, not commit order,
-- which the listener allows for (see `postgres/generation.rs`).
--
-- The sign-in log is not counted: it is not part of any view, and it is written on every
-- token request.

CREATE SEQUENCE keyless_generation;

-- SECURITY DEFINER: another role allowed to change these tables (an operator's) need not
-- be granted the sequence too; with a fixed search_path, so that role cannot substitute
-- its own functions. The sequence lives in the schema of the tables (the migration's).
CREATE FUNCTION keyless_take_generation() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- '' once any transaction of this session has set it: a setting set locally reverts
    -- to the empty string, not to "unset", when its transaction ends.
    IF coalesce(current_setting('keyless.generation', true), '') = '' THEN
        PERFORM set_config(
            'keyless.generation',
            nextval((quote_ident(TG_TABLE_SCHEMA) || '.keyless_generation')::regclass)::text,
            true);
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'meta', 'tenants', 'subscriptions', 'resource_groups', 'identities',
        'federated_credentials', 'service_principals', 'role_assignments', 'signing_keys',
        'trusted_issuers', 'vaults', 'secrets', 'secret_versions'
    ] LOOP
        EXECUTE format(
            'CREATE TRIGGER keyless_generation_rows AFTER INSERT OR UPDATE OR DELETE ON %I '
            'FOR EACH ROW EXECUTE FUNCTION keyless_take_generation()', t);
        EXECUTE format(
            'CREATE TRIGGER keyless_generation_truncate AFTER TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION keyless_take_generation()', t);
    END LOOP;
END
$$;
