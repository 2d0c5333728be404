ALTER TABLE authorizations DROP COLUMN network_data, DROP COLUMN verification_data;
