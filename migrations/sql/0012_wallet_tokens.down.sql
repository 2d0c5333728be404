ALTER TABLE authorizations DROP COLUMN token_id;
DROP TABLE tokens;
