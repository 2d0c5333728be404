// Platform admin: is the pipeline well? Webhooks arriving (per minute, by type), refused (by
// reason), how fresh the dashboard is, how far each partition's consumer is behind, the dead
// letters waiting, and each process's version and readiness. One query (`pipelineHealth`, from
// the processes' own reports in Postgres, not Prometheus), read again every 5 s.

import { useEffect, useState } from "preact/hooks";
import { gql, when } from "./api";
import { Card, ErrorNote, Link, Loading } from "./ui";

interface Health {
  at: string;
  minutes: number;
  lastWebhookAt: string | null;
  secondsSinceLastWebhook: number | null;
  lastCommitAt: string | null;
  webhooks: { minute: string; eventType: string; count: number }[];
  rejections: { minute: string; reason: string; signature: boolean; count: number }[];
  records: { new: number; duplicate: number; deadLetter: number };
  partitions: { partition: number; lag: number; instance: string; reportedAt: string }[];
  deadLettersWaiting: number;
  redrivesRequested: number;
  components: {
    component: string; instance: string; version: string; ready: boolean; notReady: string | null;
    startedAt: string; reportedAt: string; secondsSinceReport: number; silent: boolean;
  }[];
}
interface Freshness { events: number; p50Ms: number | null; p99Ms: number | null }

const HEALTH = `query Health {
  hour: pipelineHealth(minutes: 60) {
    at minutes lastWebhookAt secondsSinceLastWebhook lastCommitAt
    webhooks { minute eventType count }
    rejections { minute reason signature count }
    records { new duplicate deadLetter }
    partitions { partition lag instance reportedAt }
    deadLettersWaiting redrivesRequested
    components { component instance version ready notReady startedAt reportedAt secondsSinceReport silent }
  }
  recent: pipelineHealth(minutes: 15) { freshness { events p50Ms p99Ms } }
}`;

// The gateway's refusal codes (crates/gateway/src/error.rs), in plain words.
const REFUSALS: Record<string, string> = {
  signature_missing: "No Stripe-Signature header",
  signature_malformed: "A Stripe-Signature header that cannot be read",
  signature_mismatch: "A signature no webhook secret made",
  timestamp_outside_tolerance: "Signed too long ago or ahead: a replay, or a clock that is off",
  body_too_large: "A body over the size limit",
  body_timeout: "A body that took too long to arrive",
  body_unreadable: "A body that could not be read",
  body_not_json: "A body that is not JSON",
  not_a_stripe_event: "JSON that is not a Stripe event",
  connect_event_without_account: "A Connect event without its account",
  connect_event_bad_account: "A Connect event for an account cardstream does not serve",
  account_event_with_account: "A Connect event sent to the platform's endpoint",
  wrong_event_type: "An event type this route does not take",
  broker_unavailable: "Not stored: the broker did not acknowledge (503, Stripe retries)",
  overloaded: "Shed at capacity (503 with Retry-After)",
};

/** Seconds as people say them. */
function ago(seconds: number | null): string {
  if (seconds === null) return "never";
  if (seconds < 1) return "just now";
  if (seconds < 120) return `${Math.round(seconds)} s ago`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)} h ago`;
  return `${Math.round(seconds / 86_400)} days ago`;
}

const ms = (x: number | null) => (x === null ? "—" : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`);

/** Counts summed by `key`, for the whole window and for its last five minutes. */
function byKey<T extends { minute: string; count: number }>(rows: T[], key: (r: T) => string, at: string) {
  const recent = Date.parse(at) - 5 * 60_000;
  const sums = new Map<string, { hour: number; recent: number; row: T }>();
  for (const r of rows) {
    const s = sums.get(key(r)) ?? { hour: 0, recent: 0, row: r };
    s.hour += r.count;
    if (Date.parse(r.minute) >= recent) s.recent += r.count;
    sums.set(key(r), s);
  }
  return [...sums.entries()].sort((a, b) => b[1].hour - a[1].hour);
}

export function PipelineHealth() {
  const [data, setData] = useState<{ hour: Health; recent: { freshness: Freshness } } | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let current = true;
    const load = () => gql<{ hour: Health; recent: { freshness: Freshness } }>(HEALTH)
      .then((d) => { if (current) { setData(d); setError(null); } })
      .catch((e) => { if (current) setError(e); });
    load();
    const timer = setInterval(load, 5_000);
    return () => { current = false; clearInterval(timer); };
  }, []);
  return (
    <div class="health" data-testid="health">
      <h1>Pipeline health</h1>
      <p class="hint">As the gateways, aggregators and API processes last reported (every 10 s by default); counts over the last hour. Read again every 5 s.</p>
      {error ? <ErrorNote error={error} /> : !data ? <Loading what="the pipeline's health" /> : <HealthView h={data.hour} freshness={data.recent.freshness} />}
    </div>
  );
}

function HealthView({ h, freshness }: { h: Health; freshness: Freshness }) {
  const types = byKey(h.webhooks, (w) => w.eventType, h.at);
  const refusals = byKey(h.rejections, (r) => r.reason, h.at);
  const total = h.webhooks.reduce((n, w) => n + w.count, 0);
  const lag = h.partitions.reduce((n, p) => n + p.lag, 0);
  return (
    <>
      <div class="tiles">
        <div class="tile">
          <span class="label">Last webhook</span>
          <span class="value" data-testid="health-last-webhook">{ago(h.secondsSinceLastWebhook)}</span>
          <span class="detail">{h.lastWebhookAt ? when(h.lastWebhookAt) : "none received since the gateways started reporting"}</span>
        </div>
        <div class="tile">
          <span class="label">Webhooks, last hour</span>
          <span class="value" data-testid="health-webhooks">{total}</span>
          <span class="detail"><span data-testid="health-refused">{h.rejections.reduce((n, r) => n + r.count, 0)}</span> refused</span>
        </div>
        <div class="tile">
          <span class="label">Freshness, last 15 min</span>
          <span class="value" data-testid="health-freshness-p99">p99 {ms(freshness.p99Ms)}</span>
          <span class="detail"><span data-testid="health-freshness-p50">p50 {ms(freshness.p50Ms)}</span> over {freshness.events} events</span>
        </div>
        <div class="tile">
          <span class="label">Consumer lag</span>
          <span class="value" data-testid="health-lag">{lag} records</span>
          <span class="detail">over {h.partitions.length} partitions; last commit {h.lastCommitAt ? when(h.lastCommitAt) : "none"}</span>
        </div>
        <div class="tile">
          <span class="label">Dead letters waiting</span>
          <span class="value" data-testid="health-dead-letters">{h.deadLettersWaiting}</span>
          <span class="detail">{h.redrivesRequested} redrives asked for · <Link href="/admin">see them</Link></span>
        </div>
      </div>
      <Card title="Webhooks per minute">
        <MinuteBars at={h.at} minutes={h.minutes} rows={h.webhooks} />
        {types.length === 0 ? <p class="empty">No webhooks in the last hour.</p> : (
          <table class="activity" data-testid="health-types">
            <thead><tr><th>Event type</th><th class="num">Last 5 min</th><th class="num">Last hour</th></tr></thead>
            <tbody>{types.map(([type, s]) => (
              <tr key={type} data-type={type}><td><code>{type}</code></td><td class="num">{s.recent}</td><td class="num" data-testid="type-hour">{s.hour}</td></tr>
            ))}</tbody>
          </table>
        )}
      </Card>
      <Card title="Refused webhooks">
        {refusals.length === 0 ? <p class="empty" data-testid="health-no-refusals">None in the last hour.</p> : (
          <table class="activity" data-testid="health-refusals">
            <thead><tr><th>Why</th><th>Code</th><th class="num">Last 5 min</th><th class="num">Last hour</th></tr></thead>
            <tbody>{refusals.map(([code, s]) => (
              <tr key={code} data-reason={code} data-signature={String(s.row.signature)}>
                <td>{s.row.signature ? "Signature: " : ""}{REFUSALS[code] ?? code}</td><td><code>{code}</code></td>
                <td class="num">{s.recent}</td><td class="num" data-testid="refusal-hour">{s.hour}</td>
              </tr>
            ))}</tbody>
          </table>
        )}
      </Card>
      <div class="grid">
        <Card title="Records folded, last hour">
          <table class="activity" data-testid="health-records">
            <tbody>
              <tr><td>Stored for the first time</td><td class="num" data-testid="records-new">{h.records.new}</td></tr>
              <tr><td>Already stored (redelivered)</td><td class="num" data-testid="records-duplicate">{h.records.duplicate}</td></tr>
              <tr><td>Dead-lettered</td><td class="num" data-testid="records-dead-letter">{h.records.deadLetter}</td></tr>
            </tbody>
          </table>
        </Card>
        <Card title="Consumer lag by partition">
          {h.partitions.length === 0 ? <p class="empty">No aggregator has reported a partition.</p> : (
            <table class="activity" data-testid="health-partitions">
              <thead><tr><th>Partition</th><th class="num">Behind</th><th>Read by</th></tr></thead>
              <tbody>{h.partitions.map((p) => (
                <tr key={`${p.partition}/${p.instance}`} data-partition={p.partition}>
                  <td>{p.partition}</td><td class="num" data-testid="partition-lag">{p.lag}</td><td><code>{p.instance}</code></td>
                </tr>
              ))}</tbody>
            </table>
          )}
        </Card>
      </div>
      <Card title="Processes">
        {h.components.length === 0 ? <p class="empty">No process has reported.</p> : (
          <table class="activity" data-testid="health-components">
            <thead><tr><th>Component</th><th>Process</th><th>Version</th><th>State</th><th>Last report</th></tr></thead>
            <tbody>{h.components.map((c) => (
              <tr key={c.instance} data-component={c.component} data-instance={c.instance}>
                <td>{c.component}</td><td><code>{c.instance}</code><div class="hint">since {when(c.startedAt)}</div></td>
                <td data-testid="component-version">{c.version}</td>
                <td data-testid="component-state" class={c.silent || !c.ready ? "bad" : "good"}>
                  {c.silent ? "silent" : c.ready ? "ready" : "not ready"}
                  {!c.ready && c.notReady && <div class="hint">{c.notReady}</div>}
                </td>
                <td>{ago(c.secondsSinceReport)}</td>
              </tr>
            ))}</tbody>
          </table>
        )}
      </Card>
    </>
  );
}

/** One bar per minute of the window, all event types together, with the same counts as text. */
function MinuteBars({ at, minutes, rows }: { at: string; minutes: number; rows: { minute: string; count: number }[] }) {
  const end = Math.floor(Date.parse(at) / 60_000) * 60_000;
  const counts = new Map<number, number>();
  for (const r of rows) counts.set(Date.parse(r.minute), (counts.get(Date.parse(r.minute)) ?? 0) + r.count);
  const bars = Array.from({ length: minutes }, (_, i) => {
    const start = end - (minutes - 1 - i) * 60_000;
    return { start, count: counts.get(start) ?? 0 };
  });
  const top = Math.max(1, ...bars.map((b) => b.count));
  const busiest = bars.reduce((m, b) => (b.count > m.count ? b : m), bars[0]);
  const label = `Webhooks per minute over the last ${minutes} minutes: busiest ${busiest.count} at ${new Date(busiest.start).toISOString().slice(11, 16)} UTC, ${bars[bars.length - 1].count} this minute.`;
  return (
    <div class="minute-bars" role="img" aria-label={label} data-testid="health-minutes">
      {bars.map((b) => (
        <span key={b.start} style={{ height: `${(100 * b.count) / top}%` }} title={`${new Date(b.start).toISOString().slice(11, 16)} UTC: ${b.count}`} />
      ))}
    </div>
  );
}
