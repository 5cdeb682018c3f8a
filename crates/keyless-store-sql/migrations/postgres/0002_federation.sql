-- Issuers registered with a static JWKS (private and air-gapped clusters).
CREATE TABLE trusted_issuers (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    name_key   TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(name)) STORED,
    issuer     TEXT COLLATE "C" NOT NULL,
    jwks       TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name_key)
);
CREATE UNIQUE INDEX trusted_issuers_issuer ON trusted_issuers (tenant_id, issuer);

-- The sign-in (audit) log of token requests. Identity values are never reused (as
-- SQLite's AUTOINCREMENT).
CREATE TABLE signin_log (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             BIGINT NOT NULL,
    tenant_id      TEXT COLLATE "C" NOT NULL,
    client_id      TEXT COLLATE "C" NOT NULL,
    principal_id   TEXT COLLATE "C",
    issuer         TEXT COLLATE "C",
    subject        TEXT COLLATE "C",
    resource       TEXT COLLATE "C",
    success        BOOLEAN NOT NULL,
    error_code     BIGINT,
    error          TEXT COLLATE "C",
    client_ip      TEXT COLLATE "C",
    correlation_id TEXT COLLATE "C" NOT NULL,
    latency_us     BIGINT NOT NULL
);
CREATE INDEX signin_log_tenant_at ON signin_log (tenant_id, at);
