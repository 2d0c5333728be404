// Admin: the program at a glance. Spend per currency for a period against the period before,
// spend over time, by category, top merchants and top cards, the approval rate and declines by
// reason in plain words, and a live feed of the program's newest authorizations. One query
// (`programSummary`, read from rollups); a subscription tick, at most one a second, refetches.

import { useEffect, useState } from "preact/hooks";
import { gql, subscribe, when, type Money } from "./api";
import { SpendChart } from "./chart";
import { reasonWords } from "./reasons";
import { Card, ErrorNote, Link, Loading } from "./ui";
import { useCoalesced } from "./coalesce";

interface Keyed { key: string; amount: Money; count: number }
interface CurrencySpend {
  currency: string;
  spend: Money;
  previousSpend: Money;
  change: number | null;
  captures: number;
  refunds: number;
  timeSeries: { start: string; amount: Money; count: number }[];
  byCategory: Keyed[];
  topMerchants: Keyed[];
  topCards: { card: { id: string; last4: string | null; cardholder: { name: string | null } | null }; amount: Money; count: number }[];
}
interface Program {
  from: string;
  to: string;
  previousFrom: string;
  approved: number;
  declined: number;
  approvalRate: number | null;
  declines: { reason: string | null; cardstreamReason: string | null; count: number }[];
  currencies: CurrencySpend[];
  activity: { nodes: { id: string; cardId: string; amount: Money; approved: boolean; status: string; declineReason: string | null; cardstreamReason: string | null; merchant: { name: string | null; category: string }; created: string }[] };
}

const PROGRAM = `query Program($range: DateRangeInput!, $account: ID) {
  programSummary(range: $range, account: $account) {
    from to previousFrom approved declined approvalRate
    declines(limit: 10) { reason cardstreamReason count }
    currencies {
      currency captures refunds change
      spend { amount currency formatted exponent } previousSpend { amount currency formatted }
      timeSeries { start count amount { amount currency formatted exponent } }
      byCategory(limit: 8) { key count amount { amount currency formatted } }
      topMerchants(limit: 8) { key count amount { amount currency formatted } }
      topCards(limit: 8) { count amount { amount currency formatted } card { id last4 cardholder { name } } }
    }
    activity(first: 15) { nodes {
      id cardId approved status declineReason cardstreamReason created
      amount { amount currency formatted } merchant { name category }
    } }
  }
}`;

const TICKS = `subscription { programActivity { changedCards } }`;

/** UTC days, as the rollups count them. */
const day = (d: Date) => d.toISOString().slice(0, 10);
const daysAgo = (n: number) => day(new Date(Date.now() - n * 86_400_000));

const PERIODS: Record<string, { label: string; days: number }> = {
  today: { label: "Today", days: 1 },
  "7d": { label: "7 days", days: 7 },
  "30d": { label: "30 days", days: 30 },
};

function percent(x: number | null): string {
  return x === null ? "—" : `${(x * 100).toFixed(1)} %`;
}

function change(c: number | null): string {
  if (c === null) return "no spend before";
  const sign = c > 0 ? "+" : c < 0 ? "−" : "±";
  return `${sign}${Math.abs(c * 100).toFixed(1)} % on the period before`;
}

export function Overview({ account }: { account: string | null }) {
  const [period, setPeriod] = useState("7d");
  const [custom, setCustom] = useState({ from: daysAgo(13), to: daysAgo(0) });
  const [data, setData] = useState<Program | null>(null);
  const [error, setError] = useState<unknown>(null);
  // The server ticks at most once a second; coalesced here too, so a view never refetches more.
  const [tick, changed] = useCoalesced();
  const range = period === "custom" ? custom : { from: daysAgo(PERIODS[period].days - 1), to: daysAgo(0) };

  useEffect(() => {
    let current = true;
    gql<{ programSummary: Program }>(PROGRAM, { range, account })
      .then((d) => { if (current) { setData(d.programSummary); setError(null); } })
      .catch((e) => { if (current) setError(e); });
    return () => { current = false; };
  }, [range.from, range.to, account, tick]);

  // The server sends at most one tick a second, so a burst is one refetch.
  useEffect(() => subscribe<{ programActivity: { changedCards: number } }>(
    TICKS, {}, changed, () => {},
  ), []);

  return (
    <div class="overview" data-testid="overview">
      <h1>Program overview{account ? ` · ${account}` : ""}</h1>
      <div class="periods" role="group" aria-label="Period">
        {Object.entries(PERIODS).map(([key, p]) => (
          <button type="button" key={key} class={period === key ? "on" : ""} aria-pressed={period === key}
            data-period={key} onClick={() => setPeriod(key)}>{p.label}</button>
        ))}
        <button type="button" class={period === "custom" ? "on" : ""} aria-pressed={period === "custom"}
          data-period="custom" onClick={() => setPeriod("custom")}>Custom</button>
        {period === "custom" && (
          <span class="custom">
            <label>From <input type="date" name="from" value={custom.from} max={custom.to} onChange={(e) => setCustom({ ...custom, from: e.currentTarget.value })} /></label>
            <label>To <input type="date" name="to" value={custom.to} min={custom.from} onChange={(e) => setCustom({ ...custom, to: e.currentTarget.value })} /></label>
          </span>
        )}
        <span class="hint">Days are UTC, as Stripe reports them.</span>
      </div>
      {error ? <ErrorNote error={error} /> : !data ? <Loading what="the program" /> : <ProgramView data={data} />}
    </div>
  );
}

function ProgramView({ data }: { data: Program }) {
  return (
    <>
      <p class="hint" data-testid="overview-range">{data.from === data.to ? data.from : `${data.from} to ${data.to}`}, against {data.previousFrom} onwards.</p>
      <div class="tiles">
        {data.currencies.length === 0 && <div class="tile"><span class="label">Spend</span><span class="value">none</span></div>}
        {data.currencies.map((c) => (
          <div class="tile" key={c.currency} data-testid="overview-spend" data-currency={c.currency}>
            <span class="label">Spend, {c.currency.toUpperCase()}</span>
            <span class="value" data-testid="overview-spend-amount">{c.spend.formatted}</span>
            <span class="detail" data-testid="overview-change">{change(c.change)} ({c.previousSpend.formatted})</span>
          </div>
        ))}
        <div class="tile">
          <span class="label">Approval rate</span>
          <span class="value" data-testid="overview-approval-rate">{percent(data.approvalRate)}</span>
          <span class="detail"><span data-testid="overview-approved">{data.approved}</span> approved, <span data-testid="overview-declined">{data.declined}</span> declined</span>
        </div>
      </div>
      {data.currencies.map((c) => <CurrencyView key={c.currency} c={c} />)}
      <Card title="Declines by reason">
        {data.declines.length === 0 ? <p class="empty">No declines in this period.</p> : (
          <table class="activity" data-testid="overview-declines">
            <thead><tr><th>Why</th><th>Stripe's reason</th><th>cardstream's</th><th class="num">Declines</th></tr></thead>
            <tbody>{data.declines.map((d) => (
              <tr key={`${d.reason}/${d.cardstreamReason}`} data-testid="decline-row" data-reason={d.reason ?? ""} data-cardstream-reason={d.cardstreamReason ?? ""}>
                <td>{reasonWords(d.cardstreamReason ?? d.reason ?? "unknown")}</td>
                <td><code>{d.reason ?? "—"}</code></td><td><code>{d.cardstreamReason ?? "—"}</code></td>
                <td class="num" data-testid="decline-count">{d.count}</td>
              </tr>
            ))}</tbody>
          </table>
        )}
      </Card>
      <Card title="Live: newest authorizations">
        <table class="activity" data-testid="overview-feed" aria-live="polite">
          <thead><tr><th>When</th><th>Card</th><th>Merchant</th><th class="num">Amount</th><th>Outcome</th></tr></thead>
          <tbody>{data.activity.nodes.map((a) => (
            <tr key={a.id} data-testid="feed-row" data-id={a.id}>
              <td>{when(a.created)}</td>
              <td><Link href={`/cards/${a.cardId}`}><code>{a.cardId}</code></Link></td>
              <td><Link href={`/authorizations/${a.id}`}>{a.merchant.name ?? a.merchant.category}</Link></td>
              <td class="num">{a.amount.formatted}</td>
              <td>{a.approved ? "approved" : a.status === "PENDING" ? "awaiting the decision"
                : `declined: ${reasonWords(a.cardstreamReason ?? a.declineReason ?? "unknown")}`}</td>
            </tr>
          ))}</tbody>
        </table>
      </Card>
    </>
  );
}

function CurrencyView({ c }: { c: CurrencySpend }) {
  const cur = c.currency.toUpperCase();
  const keyed = (title: string, rows: Keyed[], testid: string) => (
    <Card title={title}>
      {rows.length === 0 ? <p class="empty">None.</p> : (
        <table class="activity" data-testid={testid}>
          <thead><tr><th>{title.split(",")[0]}</th><th class="num">Spend</th><th class="num">Purchases</th></tr></thead>
          <tbody>{rows.map((r) => (
            <tr key={r.key} data-key={r.key}><td>{r.key.replaceAll("_", " ")}</td><td class="num">{r.amount.formatted}</td><td class="num">{r.count}</td></tr>
          ))}</tbody>
        </table>
      )}
    </Card>
  );
  return (
    <section class="currency" data-currency={c.currency} aria-label={`Spend in ${cur}`}>
      <Card title={`Spend over time, ${cur}`}>
        {c.timeSeries.length === 0 ? <p class="empty">No spend in this period.</p> : <SpendChart points={c.timeSeries} />}
      </Card>
      <div class="grid">
        {keyed(`Category, ${cur}`, c.byCategory, "overview-categories")}
        {keyed(`Merchant, ${cur}`, c.topMerchants, "overview-merchants")}
      </div>
      <Card title={`Top cards, ${cur}`}>
        {c.topCards.length === 0 ? <p class="empty">None.</p> : (
          <table class="activity" data-testid="overview-cards">
            <thead><tr><th>Card</th><th>Cardholder</th><th class="num">Spend</th><th class="num">Purchases</th></tr></thead>
            <tbody>{c.topCards.map((t) => (
              <tr key={t.card.id} data-card={t.card.id}>
                <td><Link href={`/cards/${t.card.id}`}>•••• {t.card.last4}</Link></td>
                <td>{t.card.cardholder?.name ?? "—"}</td>
                <td class="num" data-testid="top-card-spend">{t.amount.formatted}</td>
                <td class="num">{t.count}</td>
              </tr>
            ))}</tbody>
          </table>
        )}
      </Card>
    </section>
  );
}
