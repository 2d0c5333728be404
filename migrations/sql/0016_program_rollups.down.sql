DROP INDEX authorizations_created;
DROP INDEX card_daily_spend_currency_day;
DROP TABLE program_outcome_daily;
DROP TABLE program_merchant_daily;
DROP TABLE program_category_daily;
