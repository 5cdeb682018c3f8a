-- Vaults: ARM resources whose names are global (they are host names).
CREATE TABLE vaults (
    name            TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,
    subscription_id TEXT NOT NULL,
    resource_group  TEXT NOT NULL COLLATE NOCASE,
    tenant_id       TEXT NOT NULL,
    location        TEXT NOT NULL,
    tags            TEXT NOT NULL,
    soft_delete_days INTEGER NOT NULL,
    purge_protection INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    FOREIGN KEY (subscription_id, resource_group)
        REFERENCES resource_groups(subscription_id, name) ON DELETE CASCADE
);

-- One row per secret name; deleted_at is set while soft-deleted.
CREATE TABLE secrets (
    vault          TEXT NOT NULL COLLATE NOCASE REFERENCES vaults(name) ON DELETE CASCADE,
    name           TEXT NOT NULL COLLATE NOCASE,
    deleted_at     INTEGER,
    purge_at       INTEGER,
    PRIMARY KEY (vault, name)
);

-- Every version of every secret; the value is sealed with the key-encryption key.
CREATE TABLE secret_versions (
    vault          TEXT NOT NULL COLLATE NOCASE,
    name           TEXT NOT NULL COLLATE NOCASE,
    version        TEXT NOT NULL,
    sealed_value   BLOB NOT NULL,
    content_type   TEXT,
    tags           TEXT NOT NULL,
    enabled        INTEGER NOT NULL,
    nbf            INTEGER,
    exp            INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    PRIMARY KEY (vault, name, version),
    FOREIGN KEY (vault, name) REFERENCES secrets(vault, name) ON DELETE CASCADE
);
CREATE INDEX secret_versions_latest ON secret_versions (vault, name, seq);
