// Admin: the spending policy (the gateway follows a saved edit within seconds), cardholders
// with their cards, people (users and invitations: users.tsx, invitations.tsx), the dead
// letters (deadletters.tsx) and the audit log (audit.tsx). The cardholders are those of the
// chosen Connect account; an admin limited to accounts sees only theirs, and neither the
// policy, the people, the dead letters nor the audit log, which span the whole platform.

import { useEffect, useState } from "preact/hooks";
import { gql, type Money } from "./api";
import { Card, ErrorNote, Link, Loading } from "./ui";
import { People } from "./users";
import { DeadLetters } from "./deadletters";
import { AuditLog } from "./audit";
import { AccountLabel } from "./connect";
import { platformAdmin, type Viewer } from "./main";

interface Amount { currency: string; amount: Money }
interface Policy {
  version: number;
  allowedCurrencies: string[];
  blockedCategories: string[];
  inactiveCards: string[];
  inactiveCardholders: string[];
  maxAmount: Amount[];
  dailyLimit: Amount[];
  monthlyLimit: Amount[];
  onSpendUnknown: "APPROVE" | "DECLINE";
  partialApproval: boolean;
  updatedBy: string | null;
  // Why the gateway refuses this saved version (it keeps the one before in force); null when it applies.
  refused: string | null;
}
interface Holder { id: string; name: string | null; email: string | null; rawStatus: string; account: string | null; cards: { nodes: { id: string; last4: string | null; currency: string }[] } }
interface AdminData { policy?: Policy; cardholders: { nodes: Holder[] } }

const AMOUNTS = "{ currency amount { amount formatted exponent } }";
const POLICY_FIELDS = `version allowedCurrencies blockedCategories inactiveCards inactiveCardholders
  maxAmount ${AMOUNTS} dailyLimit ${AMOUNTS} monthlyLimit ${AMOUNTS} onSpendUnknown partialApproval updatedBy refused`;
const HOLDERS = `cardholders(first: 50, account: $account) { nodes { id name email rawStatus account cards { nodes { id last4 currency } } } }`;
/** A platform admin's view: the policy too. */
const QUERY = `query($account: ID) { policy { ${POLICY_FIELDS} } ${HOLDERS} }`;
/** An admin limited to Connect accounts reads only their cardholders. */
const LIMITED_QUERY = `query($account: ID) { ${HOLDERS} }`;

/** `self`: the signed-in admin's user id, whose own row cannot be disabled, demoted or deleted
 * here. `account`: the Connect account chosen (null: every account the admin sees). */
export function AdminView({ self, viewer, account }: { self: string; viewer: Viewer; account: string | null }) {
  const platform = platformAdmin(viewer);
  const [data, setData] = useState<AdminData | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => gql<AdminData>(platform ? QUERY : LIMITED_QUERY, { account }).then((d) => { setData(d); setError(null); }).catch(setError);
  useEffect(() => { setData(null); load(); }, [account, platform]);
  if (error) return <ErrorNote error={error} />;
  if (!data) return <Loading what="the admin view" />;
  const holders = data.cardholders.nodes;
  // The account column, on a Connect platform only.
  const accounts = holders.some((h) => h.account !== null) || viewer.user.accounts.length > 0;
  return (
    <div class="admin">
      {data.policy ? <PolicyEditor policy={data.policy} onSaved={load} /> : (
        <p class="hint" data-testid="limited-admin">
          You administer {viewer.user.accounts.join(", ")}: the spending policy and the users are the platform admins' to change.
        </p>
      )}
      <Card title={account ? `Cardholders of ${account}` : "Cardholders"}>
        {holders.length === 0 ? <p class="empty">No cardholders yet.</p> : (
          <table class="activity" data-testid="cardholders">
            <thead><tr><th>Name</th><th>ID</th><th>Email</th>{accounts && <th>Account</th>}<th>Status</th><th>Cards</th></tr></thead>
            <tbody>
              {holders.map((h) => (
                <tr key={h.id} data-testid="cardholder-row" data-id={h.id}>
                  <td>{h.name ?? "—"}</td><td><code>{h.id}</code></td><td>{h.email}</td>
                  {accounts && <td><AccountLabel account={h.account} /></td>}
                  <td>{h.rawStatus}</td>
                  <td>{h.cards.nodes.map((c) => <span key={c.id} class="chip" data-card={c.id}><Link href={`/cards/${c.id}`}>•••• {c.last4} {c.currency.toUpperCase()}</Link></span>)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      {platform && <People self={self} />}
      {platform && <DeadLetters />}
      {platform && <AuditLog />}
    </div>
  );
}

const list = (s: string) => s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);

/** Amounts as people write them, one per currency, separated by semicolons or new lines:
 * "1,500.00 USD; 200,000 JPY" (the code before the number works too). The server converts
 * each to minor units by its currency's decimals and refuses one with too many. */
export function parseAmounts(text: string): { currency: string; decimal: string }[] {
  return text.split(/[;\n]+/).map((x) => x.trim()).filter(Boolean).map((entry) => {
    const m = entry.match(/^([A-Za-z]{3})\s*([\d,]+(?:\.\d+)?)$/) ?? entry.match(/^([\d,]+(?:\.\d+)?)\s*([A-Za-z]{3})$/);
    if (!m) throw new Error(`"${entry}" is not an amount and a currency, like 1,500.00 USD`);
    const [number, currency] = /^[A-Za-z]/.test(m[1]) ? [m[2], m[1]] : [m[1], m[2]];
    if (!/^\d{1,3}(,\d{3})*(\.\d+)?$|^\d+(\.\d+)?$/.test(number)) throw new Error(`"${number}" in "${entry}" has its thousands separators in the wrong places`);
    return { currency: currency.toLowerCase(), decimal: number.replaceAll(",", "") };
  });
}

/** A stored amount written as people write it: "1,500.00 USD". */
function written(a: Amount): string {
  const exponent = a.amount.exponent ?? 2;
  const scale = 10 ** exponent;
  const whole = Math.trunc(a.amount.amount / scale).toLocaleString("en-US");
  const part = exponent ? `.${String(a.amount.amount % scale).padStart(exponent, "0")}` : "";
  return `${whole}${part} ${a.currency.toUpperCase()}`;
}
const showAmounts = (a: Amount[]) => a.map(written).join("; ");
const minorHint = (a: Amount[]) => (a.length ? `Saved as ${a.map((x) => `${x.amount.amount} ${x.currency}`).join(", ")} (minor units).` : "");

function PolicyEditor({ policy, onSaved }: { policy: Policy; onSaved: () => void }) {
  const [form, setForm] = useState({
    allowedCurrencies: policy.allowedCurrencies.join(", "),
    blockedCategories: policy.blockedCategories.join(", "),
    inactiveCards: policy.inactiveCards.join(", "),
    inactiveCardholders: policy.inactiveCardholders.join(", "),
    maxAmount: showAmounts(policy.maxAmount),
    dailyLimit: showAmounts(policy.dailyLimit),
    monthlyLimit: showAmounts(policy.monthlyLimit),
    onSpendUnknown: policy.onSpendUnknown,
  });
  // Apart from `form`, whose fields are all text.
  const [partial, setPartial] = useState(policy.partialApproval);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const field = (name: keyof typeof form, label: string, hint: string, note?: string) => (
    <label>
      {label}
      <input name={name} value={form[name]} placeholder={hint} onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })} />
      {note && <span class="hint" data-testid={`${name}-hint`}>{note}</span>}
    </label>
  );
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const input = {
        allowedCurrencies: list(form.allowedCurrencies),
        blockedCategories: list(form.blockedCategories),
        inactiveCards: list(form.inactiveCards),
        inactiveCardholders: list(form.inactiveCardholders),
        maxAmount: parseAmounts(form.maxAmount),
        dailyLimit: parseAmounts(form.dailyLimit),
        monthlyLimit: parseAmounts(form.monthlyLimit),
        onSpendUnknown: form.onSpendUnknown,
        partialApproval: partial,
      };
      const d = await gql<{ updatePolicy: { policy: { version: number } } }>(
        `mutation($i: UpdatePolicyInput!) { updatePolicy(input: $i) { policy { version } } }`,
        { i: { policy: input, expectedVersion: policy.version } },
      );
      setStatus(`Saved as version ${d.updatePolicy.policy.version}; the gateway applies it within seconds.`);
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Card title="Spending policy">
      <form class="policy" onSubmit={save} data-testid="policy">
        <p class="hint">Version {policy.version}{policy.updatedBy ? `, saved by ${policy.updatedBy}` : " (the gateway's own configuration until an admin saves one)"}.</p>
        {policy.refused && (
          <p class="error" role="alert" data-testid="policy-refused">
            The gateway refuses version {policy.version} and keeps the policy before it: {policy.refused}. Saving replaces it.
          </p>
        )}
        {field("blockedCategories", "Blocked categories", "betting_casino_gambling")}
        {field("allowedCurrencies", "Allowed currencies (empty: any)", "usd, eur")}
        {field("maxAmount", "Most per authorization", "5,000.00 USD; 500,000 JPY", minorHint(policy.maxAmount))}
        {field("dailyLimit", "Daily limit per card", "1,000.00 USD", minorHint(policy.dailyLimit))}
        {field("monthlyLimit", "Monthly limit per card", "10,000.00 USD", minorHint(policy.monthlyLimit))}
        {field("inactiveCards", "Inactive cards", "ic_…")}
        {field("inactiveCardholders", "Inactive cardholders", "ich_…")}
        <label>
          When spend is unknown
          <select name="onSpendUnknown" value={form.onSpendUnknown} onChange={(e) => setForm({ ...form, onSpendUnknown: e.currentTarget.value as "APPROVE" | "DECLINE" })}>
            <option value="DECLINE">Decline</option>
            <option value="APPROVE">Approve</option>
          </select>
        </label>
        <label class="check">
          <input type="checkbox" name="partialApproval" checked={partial} onChange={(e) => setPartial(e.currentTarget.checked)} />
          Partial approvals: approve what the limits leave when Stripe lets the amount be chosen (e.g. at a fuel pump)
        </label>
        {error ? <ErrorNote error={error} /> : null}
        {status && <p class="ok" role="status">{status}</p>}
        <button type="submit">Save policy</button>
      </form>
    </Card>
  );
}
