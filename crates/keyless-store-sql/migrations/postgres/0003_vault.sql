-- Vaults: ARM resources whose names are global (they are host names).
CREATE TABLE vaults (
    name               TEXT COLLATE "C" NOT NULL,
    name_key           TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(name)) STORED,
    subscription_id    TEXT COLLATE "C" NOT NULL,
    resource_group     TEXT COLLATE "C" NOT NULL,
    resource_group_key TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(resource_group)) STORED,
    tenant_id          TEXT COLLATE "C" NOT NULL,
    location           TEXT COLLATE "C" NOT NULL,
    tags               TEXT COLLATE "C" NOT NULL,
    soft_delete_days   BIGINT NOT NULL,
    purge_protection   BOOLEAN NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (name_key),
    FOREIGN KEY (subscription_id, resource_group_key)
        REFERENCES resource_groups(subscription_id, name_key) ON DELETE CASCADE
);
CREATE INDEX vaults_resource_group ON vaults (subscription_id, resource_group_key);

-- One row per secret name; deleted_at is set while soft-deleted.
CREATE TABLE secrets (
    vault      TEXT COLLATE "C" NOT NULL,
    vault_key  TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(vault)) STORED
        REFERENCES vaults(name_key) ON DELETE CASCADE,
    name       TEXT COLLATE "C" NOT NULL,
    name_key   TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(name)) STORED,
    deleted_at BIGINT,
    purge_at   BIGINT,
    PRIMARY KEY (vault_key, name_key)
);

-- Every version of every secret; the value is sealed with the key-encryption key.
CREATE TABLE secret_versions (
    vault        TEXT COLLATE "C" NOT NULL,
    vault_key    TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(vault)) STORED,
    name         TEXT COLLATE "C" NOT NULL,
    name_key     TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(name)) STORED,
    version      TEXT COLLATE "C" NOT NULL,
    sealed_value BYTEA NOT NULL,
    content_type TEXT COLLATE "C",
    tags         TEXT COLLATE "C" NOT NULL,
    enabled      BOOLEAN NOT NULL,
    nbf          BIGINT,
    exp          BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (vault_key, name_key, version),
    FOREIGN KEY (vault_key, name_key) REFERENCES secrets(vault_key, name_key) ON DELETE CASCADE
);
CREATE INDEX secret_versions_latest ON secret_versions (vault_key, name_key, seq);
