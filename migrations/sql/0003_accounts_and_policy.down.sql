DROP INDEX authorizations_card_approved;
DROP TABLE authorization_policy;
DROP TABLE user_cardholders;
DROP TABLE users;
