ALTER TABLE invitations DROP COLUMN accounts;
