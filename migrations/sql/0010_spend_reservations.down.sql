DROP FUNCTION reserve_spend(text, text, text, text, bigint, boolean, bigint, integer, integer, bigint, bigint, interval, interval);
DROP TABLE spend_reservations;
