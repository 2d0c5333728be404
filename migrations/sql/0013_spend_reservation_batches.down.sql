DROP FUNCTION reserve_spend_batch(text[], text[], text[], text[], bigint[], boolean[], bigint[],
                                  bigint[], bigint[], integer, integer, interval, interval,
                                  boolean);
