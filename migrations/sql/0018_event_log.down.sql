DROP INDEX stripe_events_created;
DROP INDEX stripe_events_card;
DROP INDEX stripe_events_object;
ALTER TABLE stripe_events DROP COLUMN card_id, DROP COLUMN object_id;
