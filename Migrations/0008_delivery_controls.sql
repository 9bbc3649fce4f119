-- Delivery controls (issue 15, first part): an endpoint's filter over the message, and a message's time of delivery.

-- The filter as JSON text (see RoutingFilter), or NULL: every message that reaches the endpoint otherwise.
ALTER TABLE endpoints ADD COLUMN filter TEXT;

-- No attempt before deliver_at (microseconds); its deliveries are queued with next_attempt_at = deliver_at.
ALTER TABLE messages ADD COLUMN deliver_at BIGINT;

-- The inbound source a message came through, and the request headers it forwarded (a JSON object), for filters.
ALTER TABLE messages ADD COLUMN source_id TEXT;
ALTER TABLE messages ADD COLUMN headers TEXT;

-- Throttling: an endpoint's rate_limit is throttle_rate deliveries a second (Svix throttleRate) with bursts of
-- rate_limit_burst (default the rate). Its shared state, one row per throttled endpoint, is drawn on by every worker
-- in the claiming transaction: next_slot (when the next delivery is due by the rate), and the adaptive slow-down after
-- 429/502/503/504 (factor, adapted_at, hold_until from Retry-After). A delivery that must wait gets a slot of its own
-- (throttle_slot) and is sent when the slot comes, its attempt count unchanged.
ALTER TABLE endpoints ADD COLUMN rate_limit_burst BIGINT;
ALTER TABLE deliveries ADD COLUMN throttle_slot BIGINT;
CREATE TABLE endpoint_throttles (
    endpoint_id TEXT PRIMARY KEY REFERENCES endpoints (id) ON DELETE CASCADE,
    next_slot BIGINT,
    factor DOUBLE PRECISION NOT NULL,
    adapted_at BIGINT,
    hold_until BIGINT
);

-- Ordered delivery: an endpoint with ordering 'fifo' receives one delivery at a time per line, in publish order; its
-- deliveries carry their line (the ordering_key's value in the payload, or '' for the whole endpoint) and their place
-- in it (ordering_seq). A delivery is claimed only when no earlier one of its line is still queued or in flight.
ALTER TABLE endpoints ADD COLUMN ordering TEXT;
ALTER TABLE endpoints ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_line TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_seq BIGINT;
CREATE INDEX deliveries_by_line ON deliveries (endpoint_id, ordering_line, ordering_seq);
