// Admin: the event log. Stored events searched by id, type, object, card and time (in the
// viewer's time zone), newest first, 50 a page; each opens to its raw JSON, the object it
// carried and whether the stored object is still that event's version.

import { useEffect, useState } from "preact/hooks";
import { gql, when } from "./api";
import { Card, ErrorNote, Link, Loading } from "./ui";

interface EventEntry {
  id: string;
  type: string;
  created: string;
  livemode: boolean;
  apiVersion: string | null;
  account: string | null;
  cardId: string | null;
  object: { kind: string; id: string; currentVersionEventId: string | null; isCurrent: boolean } | null;
  partition: number;
  offset: string;
  ingestedAt: string;
  payload: unknown;
  cursor: string;
}

const EVENTS = `query Events($search: EventSearchInput!, $after: String) {
  events(search: $search, after: $after, first: 50) {
    id type created livemode apiVersion account cardId partition offset ingestedAt payload cursor
    object { kind id currentVersionEventId isCurrent }
  }
  eventTypes
}`;

const FIELDS = [
  { name: "id", label: "Event id", hint: "evt_…" },
  { name: "objectId", label: "Object id", hint: "iauth_…, ipi_…, ic_…" },
  { name: "cardId", label: "Card", hint: "ic_…" },
] as const;

/** An object's page in the dashboard, where it has one. */
function objectLink(kind: string, id: string): string | null {
  if (kind === "issuing.authorization") return `/authorizations/${id}`;
  if (kind === "issuing.card") return `/cards/${id}`;
  return null;
}

/** A `datetime-local` value (the viewer's own time) as an RFC 3339 instant. */
const instant = (local: string) => (local ? new Date(local).toISOString() : null);

export function EventLog() {
  const [form, setForm] = useState({ id: "", type: "", objectId: "", cardId: "", from: "", to: "" });
  const [search, setSearch] = useState(form);
  const [pages, setPages] = useState<EventEntry[][]>([]);
  const [types, setTypes] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const load = (after: string | null, keep: EventEntry[][]) => {
    setLoading(true);
    const s = search;
    const vars = {
      id: s.id.trim() || null, type: s.type || null, objectId: s.objectId.trim() || null,
      cardId: s.cardId.trim() || null, from: instant(s.from), to: instant(s.to),
    };
    gql<{ events: EventEntry[]; eventTypes: string[] }>(EVENTS, { search: vars, after })
      .then((d) => { setPages([...keep, d.events]); setTypes(d.eventTypes); setError(null); })
      .catch(setError)
      .finally(() => setLoading(false));
  };
  useEffect(() => { setPages([]); load(null, []); }, [search]);
  const events = pages.flat();
  const last = pages[pages.length - 1];
  return (
    <div class="events" data-testid="event-log">
      <h1>Event log</h1>
      <form class="toolbar" data-testid="event-search" onSubmit={(e) => { e.preventDefault(); setSearch({ ...form }); }}>
        {FIELDS.map((f) => (
          <label key={f.name}>{f.label}
            <input name={f.name} value={form[f.name]} placeholder={f.hint} onInput={(e) => setForm({ ...form, [f.name]: e.currentTarget.value })} />
          </label>
        ))}
        <label>Type
          <select name="type" value={form.type} onChange={(e) => setForm({ ...form, type: e.currentTarget.value })}>
            <option value="">Any</option>
            {types.map((t) => <option key={t} value={t}>{t}</option>)}
          </select>
        </label>
        <label>From<input type="datetime-local" name="from" value={form.from} onInput={(e) => setForm({ ...form, from: e.currentTarget.value })} /></label>
        <label>To<input type="datetime-local" name="to" value={form.to} onInput={(e) => setForm({ ...form, to: e.currentTarget.value })} /></label>
        <button type="submit">Search</button>
      </form>
      <p class="hint">Times are in your time zone; events are ordered by Stripe's <code>created</code>, newest first.</p>
      {error ? <ErrorNote error={error} /> : pages.length === 0 ? <Loading what="events" /> : (
        <Card title={`${events.length}${last && last.length === 50 ? "+" : ""} events`}>
          {events.length === 0 ? <p class="empty">No stored event matches.</p> : (
            <ul class="event-list">
              {events.map((e) => <EventRow key={e.id} e={e} />)}
            </ul>
          )}
          {last && last.length === 50 && (
            <button type="button" class="link" disabled={loading} onClick={() => load(last[last.length - 1].cursor, pages)}>Older events</button>
          )}
        </Card>
      )}
    </div>
  );
}

function EventRow({ e }: { e: EventEntry }) {
  const link = e.object ? objectLink(e.object.kind, e.object.id) : null;
  return (
    <li data-testid="event-row" data-id={e.id}>
      <details>
        <summary>
          <span class="when">{when(e.created)}</span> <code>{e.type}</code> <code>{e.id}</code>
          {e.account && <span class="account-label">{e.account}</span>}
        </summary>
        <dl class="event-facts">
          <dt>Object</dt>
          <dd data-testid="event-object">
            {e.object ? (
              <>
                {e.object.kind} {link ? <Link href={link}><code>{e.object.id}</code></Link> : <code>{e.object.id}</code>}
                {" · "}
                <span data-testid="event-current">{e.object.isCurrent ? "the stored version"
                  : e.object.currentVersionEventId ? `replaced by ${e.object.currentVersionEventId}` : "not stored"}</span>
              </>
            ) : "none"}
          </dd>
          {e.cardId && <><dt>Card</dt><dd><Link href={`/cards/${e.cardId}`}><code>{e.cardId}</code></Link></dd></>}
          <dt>Read from</dt><dd>partition {e.partition}, offset {e.offset}, stored {when(e.ingestedAt)}</dd>
          <dt>API version</dt><dd>{e.apiVersion ?? "—"}{e.livemode ? " · live mode" : " · test mode"}</dd>
        </dl>
        <pre class="payload" data-testid="event-payload" tabIndex={0}>{JSON.stringify(e.payload, null, 2)}</pre>
      </details>
    </li>
  );
}
