-- Tenants become records: a name and metadata for the tenant ids that endpoints and messages name. A tenant still
-- exists implicitly with its first endpoint or message; a record is written when it is named (PATCH).
CREATE TABLE tenants (
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (application_id, tenant_id)
);
