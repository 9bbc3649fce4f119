-- Delivery: messages, deliveries (the queue), attempts, and the audit log.
-- A delivery is queued while next_attempt_at is set: a worker claims it when that time has passed, sets
-- status 'delivering' and moves next_attempt_at to the end of its lease. A lease that runs out (the worker
-- died) makes the delivery due again, so nothing claimed is lost. Final deliveries have next_attempt_at NULL.

-- payload is the exact text the publisher sent as "payload"; it is delivered byte for byte.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX messages_by_application ON messages (application_id, id);
CREATE INDEX messages_by_tenant ON messages (application_id, tenant_id, id);
-- NULL event ids never collide, on SQLite as on PostgreSQL.
CREATE UNIQUE INDEX messages_by_event_id ON messages (application_id, event_id);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt_count BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    next_trigger TEXT NOT NULL DEFAULT 'scheduled',
    lease_token TEXT,
    lease_expiries BIGINT NOT NULL DEFAULT 0,
    last_status_code BIGINT,
    last_error TEXT,
    last_attempt_at BIGINT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at);
CREATE INDEX deliveries_by_application ON deliveries (application_id, id);
CREATE INDEX deliveries_by_message ON deliveries (message_id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);

CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    status_code BIGINT,
    response_body TEXT,
    duration_ms BIGINT NOT NULL,
    error TEXT,
    trigger TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX attempts_by_delivery ON attempts (delivery_id, id);

-- summary is a JSON object describing the change; it never holds a secret.
CREATE TABLE audit_entries (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX audit_entries_by_organization ON audit_entries (organization_id, id);
