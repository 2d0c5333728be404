// One card's dashboard: the card switcher, the period, the tiles, spend by category, spend over
// time, top merchants, activity and disputes. A subscription keeps it live.

import { useEffect, useState } from "preact/hooks";
import { gql, subscribe, type CardStatus, type Money } from "./api";
import type { Viewer } from "./main";
import { navigate } from "./main";
import { AccountLabel } from "./connect";
import { ActivityTable } from "./activity";
import { DisputeList, type Dispute } from "./disputes";
import { WalletList, type WalletToken } from "./wallets";
import { SpendChart } from "./chart";
import { Card, ErrorNote, Link, Loading } from "./ui";
import { useCoalesced } from "./coalesce";

interface Keyed { key: string; amount: Money; count: number }
interface Summary {
  totalSpend: Money;
  averageSpend: Money | null;
  purchases: number;
  approved: number;
  declined: number;
  approvalRate: number | null;
  byCategory: Keyed[];
  topMerchants: Keyed[];
  timeSeries: { start: string; amount: Money; count: number }[];
}
interface CardData {
  id: string;
  last4: string | null;
  brand: string | null;
  currency: string;
  status: CardStatus;
  rawStatus: string;
  /** The Stripe Connect account; null: the platform's own. */
  account: string | null;
  cardholder: { name: string | null } | null;
  tokens: WalletToken[];
  spendSummary: Summary;
}
interface SummaryData { card: CardData; disputes: { nodes: Dispute[] } }

const SUMMARY = `query($id: ID!, $range: DateRangeInput, $bucket: Bucket!) {
  card(id: $id) { id last4 brand currency status rawStatus account cardholder { name } tokens { id walletProvider rawStatus deviceType network last4 created }
    spendSummary(range: $range) {
      totalSpend { amount currency formatted exponent } averageSpend { amount currency formatted }
      purchases approved declined approvalRate
      byCategory(limit: 12) { key count amount { amount currency formatted } }
      topMerchants(limit: 5) { key count amount { amount currency formatted } }
      timeSeries(bucket: $bucket) { start count amount { amount currency formatted exponent } }
    } }
  disputes(cardId: $id) { nodes { id transactionId rawStatus reason lossReason created fundsReinstatedAt fundsRescindedAt amount { amount currency formatted } } }
}`;

const PERIODS: Record<string, { label: string; days: number | null; bucket: string }> = {
  "30d": { label: "30 days", days: 30, bucket: "DAY" },
  "90d": { label: "90 days", days: 90, bucket: "WEEK" },
  all: { label: "All time", days: null, bucket: "MONTH" },
};

function rangeOf(days: number | null) {
  if (days === null) return null;
  const from = new Date(Date.now() - (days - 1) * 86_400_000);
  return { from: from.toISOString().slice(0, 10) };
}

/** `showAccount`: label the card with its Connect account (for admins of a Connect platform). */
export function CardView({ cardId, viewer, showAccount = false }: { cardId: string; viewer: Viewer; showAccount?: boolean }) {
  const [period, setPeriod] = useState("30d");
  const [data, setData] = useState<SummaryData | null>(null);
  const [error, setError] = useState<unknown>(null);
  // At most one refetch a second, however many purchases a burst brings.
  const [liveVersion, changed] = useCoalesced();
  const [liveNote, setLiveNote] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    const p = PERIODS[period];
    gql<SummaryData>(SUMMARY, { id: cardId, range: rangeOf(p.days), bucket: p.bucket })
      .then((d) => { if (!cancelled) { setData(d); setError(null); } })
      .catch((e) => { if (!cancelled) setError(e); });
    return () => { cancelled = true; };
  }, [cardId, period, liveVersion]);

  useEffect(() => {
    setData(null);
    // The last change seen: the client subscribes again with these same variables after a
    // lost connection, and the server then sends every change of the card made meanwhile.
    const variables: { id: string; afterSeq: number | null } = { id: cardId, afterSeq: null };
    return subscribe<{ activity: { seq: number } }>(
      `subscription($id: ID!, $afterSeq: Long) { activity(cardId: $id, afterSeq: $afterSeq) { seq } }`,
      variables,
      (d) => { variables.afterSeq = d.activity.seq; setLiveNote(null); changed(); },
      (message) => setLiveNote(message),
    );
  }, [cardId]);

  if (error) return <ErrorNote error={error} />;
  if (!data) return <Loading what="the card" />;
  const { card } = data;
  const disputes = data.disputes.nodes;
  const s = card.spendSummary;
  return (
    <div class="dashboard">
      <div class="toolbar">
        <label>
          Card
          <select
            data-testid="card-switcher"
            value={card.id}
            onChange={(e) => navigate(`/cards/${e.currentTarget.value}`)}
          >
            {viewer.cards.nodes.some((c) => c.id === card.id) ? null : <option value={card.id}>•••• {card.last4}</option>}
            {viewer.cards.nodes.map((c) => (
              <option value={c.id} key={c.id}>
                {c.brand ?? "Card"} •••• {c.last4} ({c.currency.toUpperCase()}){c.cardholder?.name ? ` · ${c.cardholder.name}` : ""}
              </option>
            ))}
          </select>
        </label>
        {showAccount && <AccountLabel account={card.account} testid="card-account" />}
        <div class="periods" role="group" aria-label="Period">
          {Object.entries(PERIODS).map(([key, p]) => (
            <button type="button" key={key} aria-pressed={period === key} onClick={() => setPeriod(key)}>{p.label}</button>
          ))}
        </div>
        <span class={`live ${liveNote ? "off" : "on"}`} title={liveNote ?? "Live: new purchases appear as they happen"}>
          {liveNote ? "reconnecting" : "live"}
        </span>
      </div>
      {card.status !== "ACTIVE" && <p class="note">This card is {card.rawStatus}.</p>}
      <div class="tiles">
        <Tile label="Total spend" value={s.totalSpend.formatted} testid="tile-total" />
        <Tile label="Average spend" value={s.averageSpend?.formatted ?? "—"} testid="tile-average" />
        <Tile label="Purchases" value={String(s.purchases)} testid="tile-purchases" />
        <Tile
          label="Approval rate"
          value={s.approvalRate === null ? "—" : `${Math.round(s.approvalRate * 100)}%`}
          detail={`${s.approved} approved · ${s.declined} declined`}
          testid="tile-approval"
        />
      </div>
      <div class="grid">
        <Categories rows={s.byCategory} />
        <Card title="Spend over time">
          {s.timeSeries.length === 0 ? <p class="empty">No spend in this period.</p> : <SpendChart points={s.timeSeries} />}
        </Card>
        <Card title="Top merchants">
          {s.topMerchants.length === 0 ? <p class="empty">No purchases yet.</p> : (
            <ol class="merchants">
              {s.topMerchants.map((m) => <li key={m.key}><span>{m.key}</span><span>{m.amount.formatted}</span></li>)}
            </ol>
          )}
        </Card>
        <Card title="Disputes">
          <DisputeList disputes={disputes} />
        </Card>
        <Card title="Wallets">
          <WalletList tokens={card.tokens} />
        </Card>
      </div>
      <ActivityTable cardId={card.id} version={liveVersion} exponent={s.totalSpend.exponent ?? 2} />
      <p class="back"><Link href="/">All cards</Link></p>
    </div>
  );
}

function Tile({ label, value, detail, testid }: { label: string; value: string; detail?: string; testid: string }) {
  return (
    <div class="tile" data-testid={testid}>
      <span class="label">{label}</span>
      <span class="value">{value}</span>
      {detail && <span class="detail">{detail}</span>}
    </div>
  );
}

function Categories({ rows }: { rows: Keyed[] }) {
  const [by, setBy] = useState<"amount" | "count">("amount");
  const value = (r: Keyed) => (by === "amount" ? Math.max(r.amount.amount, 0) : r.count);
  const sorted = [...rows].sort((a, b) => value(b) - value(a));
  const max = Math.max(1, ...sorted.map(value));
  return (
    <Card title="Spend by category">
      <div class="periods" role="group" aria-label="Measure">
        <button type="button" aria-pressed={by === "amount"} onClick={() => setBy("amount")}>Amount</button>
        <button type="button" aria-pressed={by === "count"} onClick={() => setBy("count")}>Purchases</button>
      </div>
      {sorted.length === 0 ? <p class="empty">No purchases in this period.</p> : (
        <ul class="bars" data-testid="categories">
          {sorted.map((r) => (
            <li key={r.key}>
              <span class="name">{r.key.replaceAll("_", " ")}</span>
              <span class="bar" style={{ width: `${(100 * value(r)) / max}%` }} />
              <span class="num">{by === "amount" ? r.amount.formatted : r.count}</span>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}
