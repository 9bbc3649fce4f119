-- Payload retention (issue 18). A plan keeps payloads payload_retention_days (default 30; NULL: until the message is
-- pruned); a publish may ask for fewer days (or Svix hours). A message's payload_expires_at is when the pruner erases
-- its payload (as the payload DELETE does), once none of its deliveries is still queued; the message, its deliveries
-- and attempts stay until the message retention.
ALTER TABLE plans ADD COLUMN payload_retention_days BIGINT DEFAULT 30;
ALTER TABLE messages ADD COLUMN payload_expires_at BIGINT;
CREATE INDEX messages_by_payload_expiry ON messages (payload_expires_at) WHERE payload_expires_at IS NOT NULL;
