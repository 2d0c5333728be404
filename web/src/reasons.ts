// Decision reasons in plain words: Stripe's (`request_history[].reason`) and cardstream's own
// (`metadata.cardstream_reason`). A reason not listed reads as its words.

const WORDS: Record<string, string> = {
  // Stripe's, before or without asking cardstream.
  account_disabled: "the Stripe account is disabled",
  card_active: "the card is active",
  card_canceled: "the card is canceled",
  card_expired: "the card has expired",
  card_inactive: "the card is not active",
  cardholder_blocked: "the cardholder is blocked",
  cardholder_inactive: "the cardholder is not active",
  cardholder_verification_required: "the cardholder must be verified first",
  insecure_authorization_method: "an insecure way of paying (e.g. a magnetic stripe) was refused",
  insufficient_funds: "not enough funds in the Issuing balance",
  not_allowed: "not allowed by Stripe",
  pin_blocked: "the PIN is blocked after too many attempts",
  spending_controls: "the card's spending controls on Stripe",
  suspected_fraud: "Stripe suspected fraud",
  verification_failed: "the card's details did not verify (CVC, expiry or address)",
  webhook_approved: "approved by cardstream",
  webhook_declined: "declined by cardstream",
  webhook_error: "cardstream's answer could not be read",
  webhook_timeout: "cardstream did not answer within Stripe's 2 seconds",
  // cardstream's own.
  approved: "approved",
  amount_over_limit: "over the most allowed for one purchase",
  approved_spend_unknown: "approved without knowing the card's spend",
  category_blocked: "the merchant's category is blocked",
  currency_not_allowed: "the currency is not allowed",
  daily_limit_exceeded: "over the card's daily limit",
  monthly_limit_exceeded: "over the card's monthly limit",
  partially_approved: "partially approved",
  spend_unknown: "the card's spend could not be checked",
};

export const reasonWords = (reason: string): string => WORDS[reason] ?? reason.replaceAll("_", " ");
