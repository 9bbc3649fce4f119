-- The portal lists one tenant's deliveries, newest first.
CREATE INDEX deliveries_by_tenant ON deliveries (application_id, tenant_id, id);
