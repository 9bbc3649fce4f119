-- Publish rate limits: one token bucket per application and tenant, shared by every API process.
CREATE TABLE rate_buckets (
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (application_id, tenant_id)
);

-- Inbound sources: provider webhooks received at /in/{id}, verified, and published into the fan-out.
-- secret is AES-GCM sealed; settings is a JSON object (header name, encoding) for the generic providers.
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    secret TEXT,
    tenant_id TEXT,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX sources_by_application ON sources (application_id, id);
CREATE INDEX audit_entries_by_entity ON audit_entries (organization_id, entity_id);
