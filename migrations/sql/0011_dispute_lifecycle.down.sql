ALTER TABLE disputes
    DROP COLUMN funds_rescinded_at,
    DROP COLUMN funds_reinstated_at,
    DROP COLUMN loss_reason;
