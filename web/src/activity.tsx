// A card's activity: every authorization, approved or declined, newest first, with filters
// that the API applies and cursor pagination ("Show more"). A live update refreshes the rows
// already shown.

import { useEffect, useState } from "preact/hooks";
import { gql, nextCursor, type AuthorizationStatus, type Connection, type Money, type TransactionKind } from "./api";
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

interface Filter { status: string; category: string; merchant: string; from: string; to: string }
const EMPTY: Filter = { status: "", category: "", merchant: "", from: "", to: "" };
const PAGE = 20;

function toInput(f: Filter) {
  return {
    status: f.status || null,
    category: f.category || null,
    merchant: f.merchant.trim() || null,
    from: f.from || null,
    to: f.to || null,
  };
}

let categoriesCache: Promise<string[]> | null = null;
function categories(): Promise<string[]> {
  categoriesCache ??= gql<{ merchantCategories: string[] }>("{ merchantCategories }")
    .then((d) => d.merchantCategories)
    .catch((e) => { categoriesCache = null; throw e; });
  return categoriesCache;
}

export function ActivityTable({ cardId, version }: { cardId: string; version: number }) {
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

  useEffect(() => { categories().then(setOptions).catch(() => setOptions([])); }, []);

  useEffect(() => {
    let cancelled = false;
    const first = Math.min(100, Math.max(PAGE, rows?.length ?? 0));
    gql<Page>(ACTIVITY, { id: cardId, filter: toInput(filter), first })
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
      const d = await gql<Page>(ACTIVITY, { id: cardId, filter: toInput(filter), first: PAGE, after: next });
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
        <input aria-label="From" name="from" type="date" value={filter.from} onChange={(e) => change({ from: e.currentTarget.value })} />
        <input aria-label="To" name="to" type="date" value={filter.to} onChange={(e) => change({ to: e.currentTarget.value })} />
        {filter !== EMPTY && <button type="button" class="link" onClick={() => { setDraft(""); change(EMPTY); }}>Clear</button>}
      </form>
      {error ? <ErrorNote error={error} /> : rows === null ? <p class="loading" role="status">Loading activity…</p> :
        rows.length === 0 ? <p class="empty">No activity matches.</p> : (
          <table class="activity" data-testid="activity">
            <thead><tr><th>Date</th><th>Merchant</th><th>Category</th><th class="num">Amount</th><th>Status</th></tr></thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id} data-id={r.id}>
                  <td>{new Date(r.created).toLocaleString()}</td>
                  <td><Link href={`/authorizations/${r.id}`}>{r.merchant.name ?? "Unknown merchant"}</Link></td>
                  <td>{r.merchant.category.replaceAll("_", " ")}</td>
                  <td class="num">{spend(r)}</td>
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

/** An approved authorization is money out, shown negative; a declined one moved nothing and
 * shows what was asked. (Refunds are transactions, on the authorization's page.) */
/** Approved is money out, shown negative; a purchase abroad shows the merchant's amount first:
 * "€12.00 → −$13.05". */
function spend(r: Row): string {
  const own = r.approved ? `−${r.amount.formatted}` : r.amount.formatted;
  const theirs = r.merchantAmount;
  return theirs && theirs.currency !== r.amount.currency ? `${theirs.formatted} → ${own}` : own;
}
