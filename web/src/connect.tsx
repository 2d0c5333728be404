// Stripe Connect: the account the dashboard is scoped to, kept in the URL (`?account=acct_…`)
// so a reload or a shared link keeps it, and the switcher that picks it. A platform admin
// (an admin not limited to accounts) sees every account and may pick one; a user limited to
// several accounts may pick among theirs; anyone else sees no switcher.

/** A connected account, as `Query.accounts` lists it. */
export interface ConnectAccount { id: string; cards: number; cardholders: number }

/** The account chosen in the URL; null for all the viewer's accounts. */
export function chosenAccount(): string | null {
  const account = new URLSearchParams(location.search).get("account")?.trim();
  return account ? account : null;
}

/** `path` with `account` as its `?account=` (none: without one). */
export function withAccount(path: string, account: string | null): string {
  const url = new URL(path, location.origin);
  if (account) url.searchParams.set("account", account);
  else url.searchParams.delete("account");
  return `${url.pathname}${url.search}${url.hash}`;
}

/** `path` keeping the account chosen now, unless `path` says its own. */
export function keepAccount(path: string): string {
  return path.includes("?") ? path : withAccount(path, chosenAccount());
}

/** Whether the viewer may pick an account, and what "all" means for them. */
export function switcherOf(role: "ADMIN" | "CARDHOLDER", limitedTo: string[], accounts: ConnectAccount[]): { all: string } | null {
  if (role === "ADMIN" && limitedTo.length === 0) return accounts.length > 0 ? { all: "All accounts" } : null;
  return limitedTo.length > 1 && accounts.length > 1 ? { all: "All my accounts" } : null;
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;

export function AccountSwitcher({ accounts, chosen, all, onChoose }: {
  accounts: ConnectAccount[];
  chosen: string | null;
  all: string;
  onChoose: (account: string | null) => void;
}) {
  return (
    <label class="account-switcher">
      <span>Account</span>
      <select data-testid="account-switcher" value={chosen ?? ""} onChange={(e) => onChoose(e.currentTarget.value || null)}>
        <option value="">{all}</option>
        {/* An account in the URL that is not listed (a typo, an old link) shows as chosen; the
            page then says it is not found. */}
        {chosen && !accounts.some((a) => a.id === chosen) ? <option value={chosen}>{chosen}</option> : null}
        {accounts.map((a) => (
          <option value={a.id} key={a.id}>{a.id} · {plural(a.cards, "card")}</option>
        ))}
      </select>
    </label>
  );
}

/** The account a card or cardholder belongs to, small; null is the platform's own. */
export function AccountLabel({ account, testid }: { account: string | null; testid?: string }) {
  return (
    <span class={`account-label${account ? "" : " own"}`} data-testid={testid} title="Stripe Connect account">
      {account ?? "platform account"}
    </span>
  );
}
