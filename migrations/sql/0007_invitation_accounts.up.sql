-- An invitation can limit the invited user to Stripe Connect accounts, as `setUserAccounts`
-- does afterwards: the user is created with those `user_accounts` rows in the same
-- transaction, so a connected account's staff never see another account, not even between
-- accepting and being limited. Empty: every account (a platform user).
ALTER TABLE invitations ADD COLUMN accounts text[] COLLATE "C" NOT NULL DEFAULT '{}';
