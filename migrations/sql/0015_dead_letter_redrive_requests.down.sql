ALTER TABLE dead_letters
    DROP COLUMN redrive_requested_at,
    DROP COLUMN redrive_requested_by,
    DROP COLUMN redrive_claimed_at;
