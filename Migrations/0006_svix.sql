-- The native model grows to carry the Svix API (/api/v1) and endpoint health: a Svix application is a tenant, so tenant records gain the
-- Svix id and throttle rate; endpoints gain a uid and channels; messages gain channels and tags; event types gain
-- versioned schemas and Svix's flags; applications choose the delivery header names.

-- svix_id is the tenant's id on the Svix API (app_…); a tenant created there without a uid has tenant_id = svix_id.
ALTER TABLE tenants ADD COLUMN svix_id TEXT;
ALTER TABLE tenants ADD COLUMN throttle_rate BIGINT;
CREATE UNIQUE INDEX tenants_by_svix_id ON tenants (application_id, svix_id);

-- uid is the caller's key of the endpoint within its application; channels a JSON array of strings or NULL (all).
ALTER TABLE endpoints ADD COLUMN uid TEXT;
ALTER TABLE endpoints ADD COLUMN channels TEXT;
ALTER TABLE endpoints ADD COLUMN throttle_rate BIGINT;
CREATE UNIQUE INDEX endpoints_by_uid ON endpoints (application_id, uid);

-- JSON arrays of strings, or NULL. An expunged message's payload is erased ('{}') and flagged.
ALTER TABLE messages ADD COLUMN channels TEXT;
ALTER TABLE messages ADD COLUMN tags TEXT;
ALTER TABLE messages ADD COLUMN payload_expunged BOOLEAN NOT NULL DEFAULT FALSE;

-- schemas: a JSON object of JSON Schemas by version ("1", "2", …); feature_flags a JSON array or NULL.
ALTER TABLE event_types ADD COLUMN schemas TEXT;
ALTER TABLE event_types ADD COLUMN deprecated BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE event_types ADD COLUMN group_name TEXT;
ALTER TABLE event_types ADD COLUMN feature_flags TEXT;

-- standard (webhook-*), svix (svix-*) or both.
ALTER TABLE applications ADD COLUMN webhook_headers TEXT NOT NULL DEFAULT 'standard';

-- Background tasks of the Svix API (recover): what ran and how it ended, for GET /api/v1/background-task/{id}.
CREATE TABLE background_tasks (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX background_tasks_by_application ON background_tasks (application_id, id);

-- Endpoint health: an endpoint's attempts and deliveries by time, so its stats read only the window asked for.
CREATE INDEX attempts_by_endpoint_time ON attempts (endpoint_id, created_at);
CREATE INDEX deliveries_by_endpoint_status ON deliveries (endpoint_id, status, created_at);
