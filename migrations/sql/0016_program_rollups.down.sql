DROP INDEX authorizations_created;
CREATE INDEX card_daily_spend_day ON card_daily_spend (day);
DROP INDEX card_daily_spend_day_covering;
DROP TABLE program_outcome_daily;
DROP TABLE program_merchant_daily;
DROP TABLE program_category_daily;
