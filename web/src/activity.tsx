// A card's activity: every authorization, approved or declined, newest first, with filters
// that the API applies and cursor pagination ("Show more"). A live update refreshes the rows
// already shown.

import { useEffect, useState } from "preact/hooks";
import { gql, nextCursor, token, type AuthorizationStatus, type Connection, type Money, type TransactionKind } from "./api";
import { reasonWords } from "./reasons";
import { Card, ErrorNote, Link } from "./ui";

interface Row {
  id: string;
  created: string;
  amount: Money;
  /** What the merchant asked in its own currency; differs from `amount` for a purchase abroad. */
  merchantAmount: Money | null;
  approved: boolean;
  outcome: "APPROVED" | "DECLINED" | "PENDING";
  status: AuthorizationStatus;
  declineReason: string | null;
  cardstreamReason: string | null;
  merchant: { name: string | null; category: string };
  transactions: { id: string; kind: TransactionKind; amount: Money }[];
}
interface Page { card: { activity: Connection<Row> } }

const ACTIVITY = `query($id: ID!, $filter: ActivityFilterInput, $first: Int, $after: String) {
  card(id: $id) { activity(filter: $filter, first: $first, after: $after) {
    nodes { id created approved outcome status declineReason cardstreamReason
      amount { amount currency formatted } merchantAmount { amount currency formatted } merchant { name category }
      transactions { id kind amount { amount currency formatted } } }
    pageInfo { hasNextPage endCursor } } } }`;

interface Filter { status: string; category: string; merchant: string; from: string; to: string; min: string; max: string }
const EMPTY: Filter = { status: "", category: "", merchant: "", from: "", to: "", min: "", max: "" };
const PAGE = 20;

/** A day picked in the viewer's own time zone: the instant its local midnight is. */
const localMidnight = (day: string, plusDays = 0) => {
  const d = new Date(`${day}T00:00:00`);
  d.setDate(d.getDate() + plusDays);
  return d.toISOString();
};

/** An amount as typed ("12.50", "1,500") in minor units of a currency of `exponent` decimals;
 * null when empty, NaN when it is not an amount. */
export function minorUnits(text: string, exponent: number): number | null {
  const t = text.replaceAll(",", "").trim();
  if (!t) return null;
  const m = t.match(/^(\d+)(?:\.(\d*))?$/);
  if (!m || (m[2] ?? "").length > exponent) return NaN;
  return Number(m[1]) * 10 ** exponent + Number((m[2] ?? "").padEnd(exponent, "0") || "0");
}

/** The filter as the API takes it; days are the viewer's own (local midnight to midnight). */
function toInput(f: Filter, exponent: number) {
  return {
    status: f.status || null,
    category: f.category || null,
    merchant: f.merchant.trim() || null,
    fromTime: f.from ? localMidnight(f.from) : null,
    toTime: f.to ? localMidnight(f.to, 1) : null,
    minAmount: minorUnits(f.min, exponent),
    maxAmount: minorUnits(f.max, exponent),
  };
}

let categoriesCache: Promise<string[]> | null = null;
function categories(): Promise<string[]> {
  categoriesCache ??= gql<{ merchantCategories: string[] }>("{ merchantCategories }")
    .then((d) => d.merchantCategories)
    .catch((e) => { categoriesCache = null; throw e; });
  return categoriesCache;
}

/** `exponent`: decimals of the card's currency, for the amount filter. */
export function ActivityTable({ cardId, version, exponent }: { cardId: string; version: number; exponent: number }) {
  const [filter, setFilter] = useState<Filter>(EMPTY);
  const [rows, setRows] = useState<Row[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [options, setOptions] = useState<string[]>([]);

  // What is typed into the merchant search, applied a moment after typing stops: the input is
  // not tied to the filter, so a live refresh cannot wipe what is being typed.
  const [draft, setDraft] = useState("");
  useEffect(() => {
    if (draft === filter.merchant) return;
    const timer = setTimeout(() => change({ merchant: draft }), 300);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [draft]);

  // The amounts too: typed into drafts, applied when typing stops, so a refetch landing
  // meanwhile (a live update) cannot reset what is being typed.
  const [amounts, setAmounts] = useState({ min: "", max: "" });
  useEffect(() => {
    if (amounts.min === filter.min && amounts.max === filter.max) return;
    const timer = setTimeout(() => change(amounts), 300);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [amounts]);

  useEffect(() => { categories().then(setOptions).catch(() => setOptions([])); }, []);

  useEffect(() => {
    let cancelled = false;
    const first = Math.min(100, Math.max(PAGE, rows?.length ?? 0));
    const input = toInput(filter, exponent);
    if (Number.isNaN(input.minAmount) || Number.isNaN(input.maxAmount)) {
      setError(new Error("An amount is a number like 12.50, with at most as many decimals as the currency has."));
      return;
    }
    gql<Page>(ACTIVITY, { id: cardId, filter: input, first })
      .then((d) => {
        if (cancelled) return;
        setRows(d.card.activity.nodes);
        setNext(nextCursor(d.card.activity));
        setError(null);
      })
      .catch((e) => { if (!cancelled) setError(e); });
    return () => { cancelled = true; };
    // `rows` is read only to keep as many rows as are shown; it must not refetch.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [cardId, filter, version]);

  const more = async () => {
    if (!next) return;
    setBusy(true);
    try {
      const d = await gql<Page>(ACTIVITY, { id: cardId, filter: toInput(filter, exponent), first: PAGE, after: next });
      setRows((r) => [...(r ?? []), ...d.card.activity.nodes]);
      setNext(nextCursor(d.card.activity));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const change = (patch: Partial<Filter>) => { setRows(null); setFilter((f) => ({ ...f, ...patch })); };

  return (
    <Card title="Activity">
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <select aria-label="Status" name="status" value={filter.status} onChange={(e) => change({ status: e.currentTarget.value })}>
          <option value="">All</option>
          <option value="APPROVED">Approved</option>
          <option value="DECLINED">Declined</option>
          <option value="PENDING">Pending</option>
        </select>
        <select aria-label="Category" name="category" value={filter.category} onChange={(e) => change({ category: e.currentTarget.value })}>
          <option value="">Every category</option>
          {options.map((c) => <option key={c} value={c}>{c.replaceAll("_", " ")}</option>)}
        </select>
        <input aria-label="Merchant" name="merchant" type="search" placeholder="Merchant" value={draft}
          onInput={(e) => setDraft(e.currentTarget.value)} />
        <input aria-label="From (your time zone)" name="from" type="date" value={filter.from} max={filter.to || undefined} onChange={(e) => change({ from: e.currentTarget.value })} />
        <input aria-label="To (your time zone)" name="to" type="date" value={filter.to} min={filter.from || undefined} onChange={(e) => change({ to: e.currentTarget.value })} />
        <input aria-label="Smallest amount" name="min" inputMode="decimal" placeholder="Min amount" value={amounts.min} onInput={(e) => setAmounts({ ...amounts, min: e.currentTarget.value })} />
        <input aria-label="Largest amount" name="max" inputMode="decimal" placeholder="Max amount" value={amounts.max} onInput={(e) => setAmounts({ ...amounts, max: e.currentTarget.value })} />
        <button type="button" class="link" data-testid="export" onClick={() => exportCsv(cardId, toInput(filter, exponent)).catch(setError)}>Export CSV</button>
        {filter !== EMPTY && <button type="button" class="link" onClick={() => { setDraft(""); setAmounts({ min: "", max: "" }); change(EMPTY); }}>Clear</button>}
      </form>
      {error ? <ErrorNote error={error} /> : rows === null ? <p class="loading" role="status">Loading activity…</p> :
        rows.length === 0 ? <p class="empty">No activity matches.</p> : (
          <table class="activity fits-phone" data-testid="activity">
            <thead><tr><th>Date</th><th>Merchant</th><th>Category</th><th class="num">Amount</th><th>Status</th></tr></thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id} data-id={r.id}>
                  <td>{new Date(r.created).toLocaleString()}</td>
                  <td><Link href={`/authorizations/${r.id}`}>{r.merchant.name ?? "Unknown merchant"}</Link></td>
                  <td>{r.merchant.category.replaceAll("_", " ")}</td>
                  <td class="num amount"><Amount r={r} /></td>
                  <td>
                    <span class={`badge ${r.outcome.toLowerCase()}`}>{r.outcome.toLowerCase()}</span>
                    {r.outcome === "DECLINED" && <span class="reason">{reasonWords(r.cardstreamReason ?? r.declineReason ?? "")}</span>}
                    {r.cardstreamReason === "partially_approved" && <span class="partial" data-testid="partial">partially approved</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      {next && <button type="button" onClick={more} disabled={busy} data-testid="more">{busy ? "Loading…" : "Show more"}</button>}
    </Card>
  );
}

/** Downloads the activity as the filter selects it, as CSV: the API streams it a page at a
 * time (`GET /export/activity.csv`), whatever its size. */
async function exportCsv(cardId: string, input: ReturnType<typeof toInput>) {
  if (Number.isNaN(input.minAmount) || Number.isNaN(input.maxAmount)) throw new Error("An amount is a number like 12.50.");
  const params = new URLSearchParams({ card: cardId });
  for (const [key, value] of Object.entries(input)) if (value !== null) params.set(key, String(value));
  const response = await fetch(`/export/activity.csv?${params}`, { headers: { authorization: `Bearer ${token() ?? ""}` } });
  if (!response.ok) throw new Error(`The export failed: ${await response.text()}`);
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: `activity-${cardId}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Amounts read one way: what a purchase spent, positive. A purchase abroad shows the
 * merchant's amount first ("€12.00 → $13.05"); a declined one is an attempt, shown as such,
 * never with a sign of its own; refunds and a reversal are marked beside the amount. */
function Amount({ r }: { r: Row }) {
  const theirs = r.merchantAmount;
  const abroad = theirs && theirs.currency !== r.amount.currency ? `${theirs.formatted} → ` : "";
  if (!r.approved) {
    return <span class="attempt" data-testid="amount">{abroad}{r.amount.formatted}<span class="mark"> attempted</span></span>;
  }
  const refunds = r.transactions.filter((t) => t.kind === "REFUND");
  return (
    <span data-testid="amount">
      {abroad}{r.amount.formatted}
      {r.status === "REVERSED" && <span class="mark" data-testid="reversed"> reversed</span>}
      {refunds.map((t) => <span key={t.id} class="mark refund" data-testid="refund"> · {t.amount.formatted} refunded</span>)}
    </span>
  );
}
