DROP TABLE consumer_positions;
DROP TABLE disputes;
DROP TABLE transactions;
DROP TABLE authorizations;
DROP TABLE cards;
DROP TABLE cardholders;
DROP TABLE stripe_events;
