-- The month's message count of an organization in shards (issue 17): publish transactions of an organization without
-- a monthly quota add to different rows, so that counting never makes them wait for each other. An organization
-- with a quota counts in shard 0, whose row is locked only from its conditional add to the commit. The count is the
-- sum of the shards.
CREATE TABLE usage_counter_shards (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    period TEXT NOT NULL,
    shard INTEGER NOT NULL,
    messages BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, period, shard)
);
INSERT INTO usage_counter_shards (organization_id, period, shard, messages) SELECT organization_id, period, 0, messages FROM usage_counters;
DROP TABLE usage_counters;
ALTER TABLE usage_counter_shards RENAME TO usage_counters;
