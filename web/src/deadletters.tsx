// Admin: the records the aggregator could not fold, newest first, with why and where they came
// from, and a button to write one back once its cause is fixed: the API records the request and
// an aggregator redrives it within seconds (`cardstream dlq redrive` does the same from a shell).
// The list shows who asked, and who redrove each and when.

import { useEffect, useState } from "preact/hooks";
import { gql, when } from "./api";
import { Card, ErrorNote, Loading } from "./ui";

interface DeadLetter {
  id: string;
  reason: string;
  error: string;
  sourcePartition: number;
  sourceOffset: string;
  eventId: string | null;
  eventType: string | null;
  payloadPreview: string;
  deadAt: string;
  redrivenAt: string | null;
  redrivenBy: string | null;
  redriveRequestedBy: string | null;
}

const QUERY = `query($reason: String, $redriven: Boolean) {
  deadLetters(reason: $reason, redriven: $redriven, first: 100) {
    id reason error sourcePartition sourceOffset eventId eventType payloadPreview deadAt redrivenAt redrivenBy
    redriveRequestedBy
  }
}`;

// The aggregator's reasons (crates/aggregator/src/records.rs), in plain words.
const REASONS: Record<string, string> = {
  unauthenticated: "Not signed by a gateway key the aggregator knows",
  not_utf8: "Not UTF-8 text",
  not_json: "Not JSON",
  not_an_event: "Not a Stripe event",
  unsupported_content: "Content Postgres cannot store",
  invalid_object: "An object of a shape this version does not know",
  rejected_by_database: "Refused by Postgres",
};

const REDRIVE = `mutation($ids: [ID!]!) { redriveDeadLetters(input: { deadLetterIds: $ids }) { deadLetters { id } } }`;

export function DeadLetters() {
  const [reason, setReason] = useState("");
  const [redriven, setRedriven] = useState(false);
  const [letters, setLetters] = useState<DeadLetter[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () =>
    gql<{ deadLetters: DeadLetter[] }>(QUERY, { reason: reason || null, redriven })
      .then((d) => { setLetters(d.deadLetters); setError(null); })
      .catch(setError);
  useEffect(() => { setLetters(null); load(); }, [reason, redriven]);
  // While a redrive asked for is not done, look again every 2 s.
  const waiting = letters?.some((l) => l.redriveRequestedBy && !l.redrivenBy) ?? false;
  useEffect(() => {
    if (!waiting) return;
    const timer = setInterval(load, 2_000);
    return () => clearInterval(timer);
  }, [waiting, reason, redriven]);
  const redrive = (id: string) => gql(REDRIVE, { ids: [id] }).then(load).catch(setError);
  return (
    <Card title="Dead letters">
      <div class="filters">
        <label>
          Reason
          <select name="deadLetterReason" value={reason} onChange={(e) => setReason(e.currentTarget.value)}>
            <option value="">Any</option>
            {Object.entries(REASONS).map(([code, words]) => <option key={code} value={code}>{words}</option>)}
          </select>
        </label>
        <label class="check">
          <input type="checkbox" name="redriven" checked={redriven} onChange={(e) => setRedriven(e.currentTarget.checked)} />
          Include those redriven
        </label>
      </div>
      {error ? <ErrorNote error={error} /> : !letters ? <Loading what="dead letters" /> : letters.length === 0 ? (
        <p class="empty" data-testid="no-dead-letters">No dead letters{redriven ? "" : " waiting"}.</p>
      ) : (
        <table class="activity dead-letters" data-testid="dead-letters">
          <thead><tr><th>When</th><th>Reason</th><th>Event</th><th>From</th><th>Redriven</th><th></th></tr></thead>
          <tbody>
            {letters.map((l) => (
              <tr key={l.id} data-testid="dead-letter" data-id={l.id}>
                <td>{when(l.deadAt)}</td>
                <td title={l.reason}>
                  {REASONS[l.reason] ?? l.reason}
                  <details><summary>Error and payload</summary><p>{l.error}</p><pre>{l.payloadPreview}</pre></details>
                </td>
                <td>{l.eventId ? <code>{l.eventId}</code> : "—"}{l.eventType && <div class="hint">{l.eventType}</div>}</td>
                <td>partition {l.sourcePartition}, offset {l.sourceOffset}</td>
                <td data-testid="redriven">{l.redrivenBy ? `${when(l.redrivenAt ?? l.deadAt)} by ${l.redrivenBy}` : "—"}</td>
                <td>
                  {l.redriveRequestedBy && !l.redrivenBy ? <span class="hint">Asked for by {l.redriveRequestedBy}</span> : (
                    <button type="button" onClick={() => redrive(l.id)}>{l.redrivenBy ? "Redrive again" : "Redrive"}</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="hint">Redrive once the cause is fixed (a record that still cannot be folded comes back as a new dead letter); an event already folded changes nothing. From a shell: <code>cardstream dlq redrive --reason …</code>.</p>
    </Card>
  );
}
