-- Routing filters through an index (issue 15): a publish reads the endpoints its message can match, not every filtered
-- endpoint of the tenant. A filter whose conditions all must hold and include an equality (or $in) on a path has a
-- route (RoutingFilter.route): filter_path names the path, and endpoint_filter_routes holds one key per value the path
-- must equal (the JSON text [path, value]). A publish looks up the keys of its message on the application's routed
-- paths, and reads the endpoints without a route (filter_path NULL) as before. The filter itself is still evaluated.
ALTER TABLE endpoints ADD COLUMN filter_path TEXT;
CREATE INDEX endpoints_by_filter_path ON endpoints (application_id, tenant_id, filter_path);

CREATE TABLE endpoint_filter_routes (
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    application_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    route TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, route)
);
CREATE INDEX endpoint_filter_routes_by_match ON endpoint_filter_routes (application_id, tenant_id, route);

-- The paths any endpoint of the application routes on (a JSON array), added to and never shrunk: a path no endpoint
-- uses any more costs one key lookup that finds nothing.
ALTER TABLE applications ADD COLUMN filter_paths TEXT;
