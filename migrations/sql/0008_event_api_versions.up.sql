-- Each event's Stripe API version (`api_version` of the envelope; NULL when it has none, as
-- backfill snapshots do), so that what arrived under which version can be counted and found
-- when Stripe's shapes change. Rows from before this migration get theirs from the payload:
-- one pass over the table, which takes a while on a large one (about a minute per few
-- million events on a small machine), once.
ALTER TABLE stripe_events ADD COLUMN api_version text;
UPDATE stripe_events SET api_version = payload->>'api_version' WHERE payload ? 'api_version';
