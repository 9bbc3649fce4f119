-- Receiver authentication and TLS (issue 16). auth: the EndpointAuth JSON sealed like the signing secret (AES-GCM with
-- TERN_ENCRYPTION_KEY), auth_shown: what the APIs may show of it (type, username, token URL, client id, never a
-- secret). tls_client_certificate and tls_ca_bundle: PEM text (public); tls_client_key: the PEM key, sealed.
-- public_key: the whpk_ key of an endpoint signing with Ed25519 (its secret is then a whsk_ key).
ALTER TABLE endpoints ADD COLUMN auth TEXT;
ALTER TABLE endpoints ADD COLUMN auth_shown TEXT;
ALTER TABLE endpoints ADD COLUMN tls_client_certificate TEXT;
ALTER TABLE endpoints ADD COLUMN tls_client_key TEXT;
ALTER TABLE endpoints ADD COLUMN tls_ca_bundle TEXT;
ALTER TABLE endpoints ADD COLUMN public_key TEXT;
