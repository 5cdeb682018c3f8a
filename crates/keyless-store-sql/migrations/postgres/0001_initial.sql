-- Initial schema: the same tables and rules as migrations/sqlite/0001_initial.sql.
--
-- Every text column uses the "C" collation: comparisons and ORDER BY are bytewise (as
-- SQLite's BINARY), independent of the database's locale, and indexes never depend on the
-- operating system's collation library.
--
-- Names compare case-insensitively (ARM semantics; SQLite: COLLATE NOCASE). Each such
-- column has a generated `*_key` twin, lower(column) under "C" (which folds A-Z only,
-- exactly like NOCASE and Rust's to_ascii_lowercase); primary keys, unique rules and
-- foreign keys are on the keys, so the caller's first casing is kept in the column itself.
-- Queries compare keys with a value the application folds the same way.

CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);

CREATE TABLE tenants (
    id           TEXT COLLATE "C" PRIMARY KEY,
    display_name TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE subscriptions (
    id           TEXT COLLATE "C" PRIMARY KEY,
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    display_name TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE resource_groups (
    subscription_id TEXT COLLATE "C" NOT NULL REFERENCES subscriptions(id),
    name            TEXT COLLATE "C" NOT NULL,
    name_key        TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(name)) STORED,
    location        TEXT COLLATE "C" NOT NULL,
    tags            TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, name_key)
);

CREATE TABLE identities (
    principal_id       TEXT COLLATE "C" PRIMARY KEY,
    client_id          TEXT COLLATE "C" NOT NULL UNIQUE,
    tenant_id          TEXT COLLATE "C" NOT NULL,
    subscription_id    TEXT COLLATE "C" NOT NULL,
    resource_group     TEXT COLLATE "C" NOT NULL,
    resource_group_key TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(resource_group)) STORED,
    name               TEXT COLLATE "C" NOT NULL,
    name_key           TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(name)) STORED,
    location           TEXT COLLATE "C" NOT NULL,
    tags               TEXT COLLATE "C" NOT NULL,
    created_at         BIGINT NOT NULL,
    UNIQUE (subscription_id, resource_group_key, name_key),
    FOREIGN KEY (subscription_id, resource_group_key)
        REFERENCES resource_groups(subscription_id, name_key) ON DELETE CASCADE
);

CREATE TABLE federated_credentials (
    identity_principal_id TEXT COLLATE "C" NOT NULL
        REFERENCES identities(principal_id) ON DELETE CASCADE,
    name                  TEXT COLLATE "C" NOT NULL,
    name_key              TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(name)) STORED,
    issuer                TEXT COLLATE "C" NOT NULL,
    subject               TEXT COLLATE "C",
    audiences             TEXT COLLATE "C" NOT NULL,
    expression            TEXT COLLATE "C",
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (identity_principal_id, name_key)
);
-- issuer + subject are unique per identity (exact, case-sensitive comparison).
CREATE UNIQUE INDEX federated_credentials_issuer_subject
    ON federated_credentials (identity_principal_id, issuer, subject)
    WHERE subject IS NOT NULL;

CREATE TABLE service_principals (
    client_id    TEXT COLLATE "C" PRIMARY KEY,
    principal_id TEXT COLLATE "C" NOT NULL UNIQUE,
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    display_name TEXT COLLATE "C" NOT NULL,
    secret_hash  TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE role_assignments (
    name                   TEXT COLLATE "C" PRIMARY KEY,
    tenant_id              TEXT COLLATE "C" NOT NULL,
    scope                  TEXT COLLATE "C" NOT NULL,
    scope_key              TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(scope)) STORED,
    role_definition_id     TEXT COLLATE "C" NOT NULL,
    role_definition_key    TEXT COLLATE "C" NOT NULL
        GENERATED ALWAYS AS (lower(role_definition_id)) STORED,
    principal_id           TEXT COLLATE "C" NOT NULL,
    principal_type         TEXT COLLATE "C" NOT NULL,
    description            TEXT COLLATE "C",
    created_at             BIGINT NOT NULL,
    UNIQUE (scope_key, role_definition_key, principal_id)
);
-- Deleting an identity deletes the assignments naming it.
CREATE INDEX role_assignments_principal ON role_assignments (principal_id);

CREATE TABLE signing_keys (
    kid                TEXT COLLATE "C" PRIMARY KEY,
    tenant_id          TEXT COLLATE "C" NOT NULL,
    alg                TEXT COLLATE "C" NOT NULL,
    sealed_private_key BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    active_from        BIGINT NOT NULL,
    retired_at         BIGINT
);
