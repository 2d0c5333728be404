DROP TABLE card_merchant_spend;
DROP TABLE card_category_spend;
DROP TABLE card_daily_spend;
