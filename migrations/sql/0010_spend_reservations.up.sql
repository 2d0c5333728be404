-- The spend limits' shared ledger. Each gateway replica reserves an approval here before it
-- answers Stripe, so that replicas deciding at the same moment see each other's approvals:
-- no interleaving of requests across replicas approves past a card's limit. A reservation
-- stands for an approved request until the aggregator folds the authorization it became (its
-- hold then counts instead) and is deleted in that same transaction; one whose authorization
-- never arrives stops counting after the gateway's reservation TTL.
CREATE TABLE spend_reservations (
    -- The `issuing_authorization.request` event: an incremental authorization asks again for
    -- the same authorization in a new event, and is a reservation of its own.
    event_id          text COLLATE "C" PRIMARY KEY,
    authorization_id  text COLLATE "C" NOT NULL,
    card_id           text COLLATE "C" NOT NULL,
    currency          text    NOT NULL,
    amount            bigint  NOT NULL CHECK (amount > 0),
    -- The request event's `created` (Unix seconds, Stripe's clock): the authorization
    -- versions from it on cover it.
    requested_at      bigint  NOT NULL,
    reserved_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX spend_reservations_card ON spend_reservations (card_id, currency);
CREATE INDEX spend_reservations_authorization ON spend_reservations (authorization_id);

-- Reserves `asked` (or, when `partial`, what the limits leave of it) for one request, under a
-- per-card lock, and returns what was granted with the card's spend before it: captures minus
-- refunds, approved holds not yet captured, and standing reservations, for the UTC day
-- `day` and the month starting on `month_start` (days since 1970-01-01). A NULL limit is no
-- limit. The same request event asked again (a retry that reached another replica) is given
-- what it was given, not reserved twice. The card's lock is waited for at most `p_wait`: the
-- gateway has stopped waiting by then, and a statement left queueing behind it would hold
-- its connection and reserve for a request already answered.
CREATE FUNCTION reserve_spend(
    p_event_id text, p_authorization_id text, p_card_id text, p_currency text,
    p_asked bigint, p_partial boolean, p_requested_at bigint,
    p_day integer, p_month_start integer, p_daily_limit bigint, p_monthly_limit bigint,
    p_ttl interval, p_wait interval,
    OUT granted bigint, OUT day_spend bigint, OUT month_spend bigint)
LANGUAGE plpgsql AS $$
DECLARE
    day_from   bigint := p_day::bigint * 86400;
    month_from bigint := p_month_start::bigint * 86400;
    left_over  bigint;
BEGIN
    -- A reservation lives seconds and is visible to every replica once committed, flushed or
    -- not: waiting for the disk on each one would cap approvals at the fsync rate. A Postgres
    -- crash may forget the last moment's reservations; their authorizations count once folded.
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM set_config('lock_timeout', (extract(epoch FROM p_wait) * 1000)::bigint || 'ms', true);
    PERFORM pg_advisory_xact_lock(hashtextextended('cardstream.spend.' || p_card_id, 0));
    DELETE FROM spend_reservations
     WHERE card_id = p_card_id AND reserved_at < now() - p_ttl;
    SELECT coalesce(sum(d), 0), coalesce(sum(m), 0) INTO day_spend, month_spend FROM (
        SELECT CASE WHEN s.day = DATE '1970-01-01' + p_day THEN s.spend ELSE 0 END, s.spend
          FROM card_daily_spend s
         WHERE s.card_id = p_card_id AND s.currency = p_currency
           AND s.day >= DATE '1970-01-01' + p_month_start
        UNION ALL
        SELECT CASE WHEN a.created >= day_from THEN a.amount ELSE 0 END, a.amount
          FROM authorizations a
         WHERE a.card_id = p_card_id AND a.currency = p_currency
           AND a.status = 'pending' AND a.approved AND a.created >= month_from
        UNION ALL
        -- A standing reservation counts today and this month whatever its request's date:
        -- it lives seconds (until its authorization is folded), and the request's `created`
        -- is Stripe's clock, not this day's.
        SELECT r.amount, r.amount
          FROM spend_reservations r
         WHERE r.card_id = p_card_id AND r.currency = p_currency
           AND r.event_id <> p_event_id
           -- Folded already (a reservation written after its fold, by a request whose
           -- answer timed out): the hold counts instead.
           AND NOT EXISTS (SELECT 1 FROM authorizations f
                            WHERE f.id = r.authorization_id AND f.version_rank >= 1
                              AND f.version_created >= r.requested_at)
    ) AS parts (d, m);
    SELECT amount INTO granted FROM spend_reservations WHERE event_id = p_event_id;
    IF FOUND THEN
        RETURN;
    END IF;
    -- LEAST ignores NULLs: what the tighter limit leaves, or NULL without limits.
    left_over := LEAST(p_daily_limit - day_spend, p_monthly_limit - month_spend);
    IF left_over IS NULL OR p_asked <= left_over THEN
        granted := p_asked;
    ELSIF p_partial AND left_over > 0 THEN
        granted := left_over;
    ELSE
        granted := 0;
    END IF;
    IF granted > 0 THEN
        INSERT INTO spend_reservations
            (event_id, authorization_id, card_id, currency, amount, requested_at)
        VALUES (p_event_id, p_authorization_id, p_card_id, p_currency, granted, p_requested_at);
    END IF;
END
$$;
