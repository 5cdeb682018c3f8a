-- Issuers registered with a static JWKS (private and air-gapped clusters).
CREATE TABLE trusted_issuers (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL COLLATE NOCASE,
    issuer     TEXT NOT NULL,
    jwks       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE UNIQUE INDEX trusted_issuers_issuer ON trusted_issuers (tenant_id, issuer COLLATE BINARY);

-- The sign-in (audit) log of token requests.
CREATE TABLE signin_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    tenant_id      TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    principal_id   TEXT,
    issuer         TEXT,
    subject        TEXT,
    resource       TEXT,
    success        INTEGER NOT NULL,
    error_code     INTEGER,
    error          TEXT,
    client_ip      TEXT,
    correlation_id TEXT NOT NULL,
    latency_us     INTEGER NOT NULL
);
CREATE INDEX signin_log_tenant_at ON signin_log (tenant_id, at);
