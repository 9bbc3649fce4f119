-- The queue's indexes hold open deliveries only (issue 17). A delivery leaves `deliveries_due` when it is done
-- instead of staying in it under NULL, so the index (and the claim's and the queue statistics' scans of it) stays as
-- large as the queue, not the history; and a delivery outside an ordering line is never in `deliveries_open_by_line`.
-- Every query that reads them asks for `next_attempt_at <= …` or `IS NOT NULL`, and for a line by its value.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
DROP INDEX deliveries_open_by_line;
CREATE INDEX deliveries_open_by_line ON deliveries (endpoint_id, ordering_line, ordering_seq)
WHERE ordering_line IS NOT NULL AND next_attempt_at IS NOT NULL;
