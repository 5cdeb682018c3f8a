-- Initial schema. Names compare case-insensitively (ARM semantics) via NOCASE; all
-- names are ASCII by validation, which is what NOCASE folds.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id           TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE subscriptions (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    display_name TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE resource_groups (
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    name            TEXT NOT NULL COLLATE NOCASE,
    location        TEXT NOT NULL,
    tags            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, name)
);

CREATE TABLE identities (
    principal_id    TEXT PRIMARY KEY NOT NULL,
    client_id       TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    resource_group  TEXT NOT NULL COLLATE NOCASE,
    name            TEXT NOT NULL COLLATE NOCASE,
    location        TEXT NOT NULL,
    tags            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (subscription_id, resource_group, name),
    FOREIGN KEY (subscription_id, resource_group)
        REFERENCES resource_groups(subscription_id, name) ON DELETE CASCADE
);

CREATE TABLE federated_credentials (
    identity_principal_id TEXT NOT NULL REFERENCES identities(principal_id) ON DELETE CASCADE,
    name                  TEXT NOT NULL COLLATE NOCASE,
    issuer                TEXT NOT NULL,
    subject               TEXT,
    audiences             TEXT NOT NULL,
    expression            TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (identity_principal_id, name)
);
-- issuer + subject are unique per identity (exact, case-sensitive comparison).
CREATE UNIQUE INDEX federated_credentials_issuer_subject
    ON federated_credentials (identity_principal_id, issuer COLLATE BINARY, subject COLLATE BINARY)
    WHERE subject IS NOT NULL;

CREATE TABLE service_principals (
    client_id    TEXT PRIMARY KEY NOT NULL,
    principal_id TEXT NOT NULL UNIQUE,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    display_name TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE role_assignments (
    name               TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL,
    scope              TEXT NOT NULL COLLATE NOCASE,
    role_definition_id TEXT NOT NULL COLLATE NOCASE,
    principal_id       TEXT NOT NULL,
    principal_type     TEXT NOT NULL,
    description        TEXT,
    created_at         INTEGER NOT NULL,
    UNIQUE (scope, role_definition_id, principal_id)
);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL,
    alg                TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    created_at         INTEGER NOT NULL,
    active_from        INTEGER NOT NULL,
    retired_at         INTEGER
);
