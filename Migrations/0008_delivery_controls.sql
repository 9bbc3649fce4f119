-- Delivery controls (issue 15, first part): an endpoint's filter over the message, and a message's time of delivery.

-- The filter as JSON text (see RoutingFilter), or NULL: every message that reaches the endpoint otherwise.
ALTER TABLE endpoints ADD COLUMN filter TEXT;

-- No attempt before deliver_at (microseconds); its deliveries are queued with next_attempt_at = deliver_at.
ALTER TABLE messages ADD COLUMN deliver_at BIGINT;

-- The inbound source a message came through, and the request headers it forwarded (a JSON object), for filters.
ALTER TABLE messages ADD COLUMN source_id TEXT;
ALTER TABLE messages ADD COLUMN headers TEXT;
