// Admin: the audit log, newest first. Every admin action with who did it, when, what it was
// done to and what changed (before → after where there is a before; of a policy, the settings
// that changed), filtered by action and paged back in time.

import { useEffect, useState } from "preact/hooks";
import { gql, when } from "./api";
import { Card, ErrorNote, Loading } from "./ui";

interface Entry { id: string; at: string; actor: string; action: string; subject: string; details: Record<string, unknown> }

const QUERY = `query($action: String, $before: ID) {
  auditLog(action: $action, before: $before, first: 25) { id at actor action subject details }
}`;

// The store's actions (crates/store/src), in plain words.
const ACTIONS: Record<string, string> = {
  "policy.updated": "Spending policy saved",
  "user.created": "User created",
  "user.invited": "User invited",
  "user.role_changed": "Role changed",
  "user.cardholders_changed": "Cardholders changed",
  "user.accounts_changed": "Accounts changed",
  "user.disabled": "User disabled",
  "user.enabled": "User enabled",
  "user.deleted": "User deleted",
  "user.password_reset": "Password reset started",
  "user.password_changed": "Password changed",
  "invitation.revoked": "Invitation revoked",
  "invitation.accepted": "Invitation accepted",
  "session.ended": "Signed out",
  "dead_letters.redrive_requested": "Redrive asked for",
  "dead_letter.redriven": "Dead letter redriven",
};

const show = (v: unknown) => (v === null || v === undefined ? "none" : typeof v === "string" ? v : JSON.stringify(v));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** What changed, in one line: of two objects (a policy) the keys that differ, `key: from → to`;
 * else `from → to` where there is a before; then the other details as `key: value`. */
function change(details: Record<string, unknown>): string {
  const parts: string[] = [];
  const { from, to } = details;
  if (isObject(from) && isObject(to)) {
    for (const key of [...new Set([...Object.keys(from), ...Object.keys(to)])].sort()) {
      if (JSON.stringify(from[key]) !== JSON.stringify(to[key])) parts.push(`${key}: ${show(from[key])} → ${show(to[key])}`);
    }
  } else if ("from" in details || "to" in details) {
    parts.push(`${show(from)} → ${show(to)}`);
  }
  for (const [key, value] of Object.entries(details)) {
    if (key !== "from" && key !== "to") parts.push(`${key.replaceAll("_", " ")}: ${show(value)}`);
  }
  return parts.join("; ");
}

export function AuditLog() {
  const [action, setAction] = useState("");
  const [pages, setPages] = useState<Entry[][]>([]);
  const [error, setError] = useState<unknown>(null);
  const load = (before: string | null, keep: Entry[][]) =>
    gql<{ auditLog: Entry[] }>(QUERY, { action: action || null, before })
      .then((d) => { setPages([...keep, d.auditLog]); setError(null); })
      .catch(setError);
  useEffect(() => { setPages([]); load(null, []); }, [action]);
  const entries = pages.flat();
  const last = pages[pages.length - 1];
  return (
    <Card title="Audit log">
      <div class="filters">
        <label>Action{" "}
          <select name="auditAction" value={action} onChange={(e) => setAction(e.currentTarget.value)}>
            <option value="">Any</option>
            {Object.entries(ACTIONS).map(([key, words]) => <option key={key} value={key}>{words}</option>)}
          </select>
        </label>
      </div>
      {error ? <ErrorNote error={error} /> : pages.length === 0 ? <Loading what="the audit log" /> : entries.length === 0 ? (
        <p class="empty">Nothing recorded yet.</p>
      ) : (
        <table class="activity" data-testid="audit-log">
          <thead><tr><th>When</th><th>Who</th><th>What</th><th>On</th><th>Change</th></tr></thead>
          <tbody>{entries.map((e) => (
            <tr key={e.id} data-testid="audit-entry" data-id={e.id} data-action={e.action}>
              <td>{when(e.at)}</td>
              <td data-testid="audit-actor">{e.actor}</td>
              <td>{ACTIONS[e.action] ?? e.action}</td>
              <td data-testid="audit-subject">{e.subject}</td>
              <td class="change" data-testid="audit-change">{change(e.details)}</td>
            </tr>
          ))}</tbody>
        </table>
      )}
      {last && last.length === 25 && (
        <button type="button" class="link" onClick={() => load(last[last.length - 1].id, pages)}>Older entries</button>
      )}
    </Card>
  );
}
