-- An authorization's verification checks (address, postal code, CVC, expiry, 3-D Secure) and
-- its card-network data, kept as Stripe sent them for the authorization page. Rows written
-- before this migration get theirs from the event that wrote them.
ALTER TABLE authorizations ADD COLUMN verification_data jsonb, ADD COLUMN network_data jsonb;
UPDATE authorizations t
   SET verification_data = nullif(e.payload->'data'->'object'->'verification_data', 'null'::jsonb),
       network_data = nullif(e.payload->'data'->'object'->'network_data', 'null'::jsonb)
  FROM stripe_events e
 WHERE e.event_id = t.version_event_id;
