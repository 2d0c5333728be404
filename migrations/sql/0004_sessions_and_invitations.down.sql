DROP TABLE invitations;
DROP TABLE sessions;
ALTER TABLE users DROP COLUMN disabled;
ALTER TABLE users DROP COLUMN created;
