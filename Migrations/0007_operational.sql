-- Operational webhooks: events about Tern itself (an endpoint created, failing, disabled; a delivery exhausted or
-- recovered), sent to the organization's operational endpoints by the same engine as any delivery: signed, retried,
-- dead-lettered, with attempts. They live in one hidden application per organization (kind 'operational'), which
-- no list, count, lookup or plan limit of applications or endpoints shows.
ALTER TABLE applications ADD COLUMN kind TEXT NOT NULL DEFAULT 'standard';
CREATE UNIQUE INDEX applications_operational ON applications (organization_id) WHERE kind = 'operational';

-- An operational endpoint hears one application's events (watched_application_id) or all of them (NULL), in the
-- native or the Svix payload format; customer endpoints leave both NULL.
ALTER TABLE endpoints ADD COLUMN watched_application_id TEXT;
ALTER TABLE endpoints ADD COLUMN payload_format TEXT;

-- When the endpoint's current streak of failed attempts began (NULL while it succeeds): endpoint.disabled's fail_since.
ALTER TABLE endpoints ADD COLUMN failing_since BIGINT;
