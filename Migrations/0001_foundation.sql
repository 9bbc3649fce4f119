-- Foundation: plans, organizations, API keys, applications, event types, endpoints, idempotency.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Times are microseconds since 1970 (BIGINT);
-- free-form JSON is stored as TEXT.

CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    max_applications BIGINT,
    max_endpoints BIGINT,
    max_messages_per_month BIGINT,
    rate_limit_per_minute BIGINT,
    rate_limit_burst BIGINT,
    max_payload_bytes BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

INSERT INTO plans (id, name, max_applications, max_endpoints, max_messages_per_month, rate_limit_per_minute, rate_limit_burst, max_payload_bytes, created_at, updated_at) VALUES
    ('free', 'Free', 3, 10, 10000, 100, 200, 262144, 0, 0),
    ('starter', 'Starter', 10, 100, 250000, 100, 200, 262144, 0, 0),
    ('pro', 'Pro', 50, 1000, 2500000, 100, 200, 262144, 0, 0),
    ('scale', 'Scale', 200, 10000, 25000000, 100, 200, 262144, 0, 0),
    ('enterprise', 'Enterprise', NULL, NULL, NULL, 100, 200, 262144, 0, 0);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    plan_id TEXT NOT NULL REFERENCES plans (id),
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- organization_id is NULL for operator (admin) keys.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    application_id TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE INDEX api_keys_by_organization ON api_keys (organization_id, id);

CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    retry_schedule TEXT NOT NULL,
    failure_threshold BIGINT NOT NULL,
    portal TEXT NOT NULL,
    allow_unregistered_event_types BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX applications_by_organization ON applications (organization_id, id);

-- seq is a time-sortable id that orders the list (newest first) and serves as its cursor.
CREATE TABLE event_types (
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    seq TEXT NOT NULL,
    description TEXT,
    schema TEXT,
    example TEXT,
    archived BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (application_id, name)
);

CREATE INDEX event_types_by_seq ON event_types (application_id, seq);

-- secret and previous_secret are AES-GCM sealed (see SecretBox); never stored in the clear.
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    name TEXT,
    description TEXT,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    headers TEXT NOT NULL,
    timeout_seconds BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    disabled_reason TEXT,
    paused_at BIGINT,
    disabled_at BIGINT,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_expires_at BIGINT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX endpoints_by_application ON endpoints (application_id, id);
CREATE INDEX endpoints_by_tenant ON endpoints (application_id, tenant_id, id);
CREATE INDEX endpoints_by_organization ON endpoints (organization_id);

-- The subscriptions of endpoints that filter by event type, for fan-out by index.
CREATE TABLE endpoint_event_types (
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    application_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, event_type)
);

CREATE INDEX endpoint_event_types_by_match ON endpoint_event_types (application_id, tenant_id, event_type);

-- The first response to a POST with an Idempotency-Key, replayed for 24 hours. scope is the organization id,
-- or 'admin' for the operator.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code BIGINT NOT NULL,
    response_body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Messages published per organization and calendar month (UTC), for plan quotas and usage.
CREATE TABLE usage_counters (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    period TEXT NOT NULL,
    messages BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, period)
);
