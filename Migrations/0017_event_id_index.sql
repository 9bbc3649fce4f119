-- An event ID is unique within its application, and only messages published with one are in the index that says so
-- (issue 17): most publishes carry none, and each of those wrote an index entry that no lookup reads, one of the
-- b-trees every publish transaction writes. Every query that reads it asks for `event_id = …`, which implies the
-- condition, on both databases.
DROP INDEX messages_by_event_id;
CREATE UNIQUE INDEX messages_by_event_id ON messages (application_id, event_id) WHERE event_id IS NOT NULL;
