-- Stripe Connect: a platform receives its connected accounts' events on one endpoint, each
-- carrying `account`. Every object and rollup row records the account it belongs to, so that
-- a view limited to some accounts filters rows directly; NULL is the platform's own account
-- (its events carry no `account`). Stripe ids are unique across accounts, so ids stay the
-- keys.

ALTER TABLE cardholders ADD COLUMN account text COLLATE "C";
ALTER TABLE cards ADD COLUMN account text COLLATE "C";
ALTER TABLE authorizations ADD COLUMN account text COLLATE "C";
ALTER TABLE transactions ADD COLUMN account text COLLATE "C";
ALTER TABLE disputes ADD COLUMN account text COLLATE "C";
ALTER TABLE card_daily_spend ADD COLUMN account text COLLATE "C";
ALTER TABLE card_category_spend ADD COLUMN account text COLLATE "C";
ALTER TABLE card_merchant_spend ADD COLUMN account text COLLATE "C";

-- Rows written before this migration: each object's account is that of the event that wrote
-- its row (kept in stripe_events), and a rollup row's is its card's.
UPDATE cardholders t SET account = e.payload->>'account'
    FROM stripe_events e WHERE e.event_id = t.version_event_id AND e.payload ? 'account';
UPDATE cards t SET account = e.payload->>'account'
    FROM stripe_events e WHERE e.event_id = t.version_event_id AND e.payload ? 'account';
UPDATE authorizations t SET account = e.payload->>'account'
    FROM stripe_events e WHERE e.event_id = t.version_event_id AND e.payload ? 'account';
UPDATE transactions t SET account = e.payload->>'account'
    FROM stripe_events e WHERE e.event_id = t.version_event_id AND e.payload ? 'account';
UPDATE disputes t SET account = e.payload->>'account'
    FROM stripe_events e WHERE e.event_id = t.version_event_id AND e.payload ? 'account';
UPDATE card_daily_spend t SET account = c.account
    FROM cards c WHERE c.id = t.card_id AND c.account IS NOT NULL;
UPDATE card_category_spend t SET account = c.account
    FROM cards c WHERE c.id = t.card_id AND c.account IS NOT NULL;
UPDATE card_merchant_spend t SET account = c.account
    FROM cards c WHERE c.id = t.card_id AND c.account IS NOT NULL;

-- An account's cards and cardholders, for views limited to accounts.
CREATE INDEX cards_account ON cards (account, id);
CREATE INDEX cardholders_account ON cardholders (account, id);

-- The accounts a user is limited to. A user with none sees every account (the platform's
-- admins); a user with some sees only those accounts' rows, whatever their role.
CREATE TABLE user_accounts (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account text   COLLATE "C" NOT NULL CHECK (account LIKE 'acct\_%'),
    PRIMARY KEY (user_id, account)
);
