DROP TABLE stripe_sync_cursors;
