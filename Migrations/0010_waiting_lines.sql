-- Ordered delivery without polling (issue 15): a FIFO delivery behind an earlier open one of its line waits with
-- next_attempt_at far in the future (Store.waitingInLine) and is made due when the one before it ends. The claim's
-- check "no earlier open delivery in the line" and the release read only open rows (next_attempt_at set), through this
-- partial index, so a line's delivered history costs them nothing.
DROP INDEX deliveries_by_line;
CREATE INDEX deliveries_open_by_line ON deliveries (endpoint_id, ordering_line, ordering_seq) WHERE next_attempt_at IS NOT NULL;
