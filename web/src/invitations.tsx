// Invitations: the form that invites someone, the one-time link the server answers with (shown
// once: only a hash of it is stored), and the list of invitations with Revoke for pending ones.
// Password resets are invitations too (kind PASSWORD_RESET), so they are listed here as well.

import { useEffect, useRef, useState } from "preact/hooks";
import { gql, when } from "./api";
import { Card, ErrorNote } from "./ui";

export type Role = "ADMIN" | "CARDHOLDER";
export interface Invitation {
  id: string;
  email: string;
  role: Role;
  cardholderIds: string[];
  /** Stripe Connect: the accounts the invited user will see; empty: every account. */
  accounts: string[];
  kind: "INVITE" | "PASSWORD_RESET";
  state: "PENDING" | "ACCEPTED" | "REVOKED" | "EXPIRED";
  invitedBy: string | null;
  createdAt: string;
  expiresAt: string;
}
/** What `inviteUser` and `resetPassword` answer: the invitation and its secret. */
export interface Issued { invitation: Invitation; token: string }

export const INVITATION_FIELDS = "id email role cardholderIds accounts kind state invitedBy createdAt expiresAt";

/** Ids typed as "ich_1, ich_2" (commas or spaces). */
export const ids = (s: string) => s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);

const KIND = { INVITE: "invitation", PASSWORD_RESET: "password reset" } as const;

/** The link for a secret; the secret rides in the fragment, which no server ever receives. */
export const linkFor = (token: string) => `${location.origin}/invitation#${token}`;

/** The one-time link, with a copy button. It lives only in this component's props: once
 * dismissed (or the page left) it cannot be shown again, only a new one issued. */
export function OneTimeLink({ issued, onDone }: { issued: Issued; onDone: () => void }) {
  const field = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const url = linkFor(issued.token);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(url);
      setCopied("Copied.");
    } catch {
      // No clipboard permission (or not a secure context): select it for Ctrl+C instead.
      field.current?.select();
      setCopied("Selected: press Ctrl+C (⌘C) to copy.");
    }
  };
  const { email, kind, expiresAt } = issued.invitation;
  return (
    <div class="onetime" role="status" data-testid="one-time">
      <p>
        {kind === "PASSWORD_RESET" ? "Password-reset link" : "Invitation link"} for <strong>{email}</strong>. Send it to
        them yourself: it is shown only now, works once, and expires {when(expiresAt)}.
      </p>
      <div class="row">
        <input ref={field} readOnly value={url} data-testid="one-time-link" aria-label="One-time link" onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={copy} data-testid="copy-link">Copy</button>
        <button type="button" class="link" onClick={onDone}>Done</button>
      </div>
      {copied && <p class="hint">{copied}</p>}
    </div>
  );
}

export function InviteForm({ onIssued }: { onIssued: (issued: Issued) => void }) {
  const blank = { email: "", role: "CARDHOLDER" as Role, cardholderIds: "", accounts: "" };
  const [form, setForm] = useState(blank);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const d = await gql<{ inviteUser: Issued }>(
        `mutation($i: InviteUserInput!) { inviteUser(input: $i) { token invitation { ${INVITATION_FIELDS} } } }`,
        {
          i: {
            email: form.email.trim(), role: form.role,
            cardholderIds: form.role === "ADMIN" ? [] : ids(form.cardholderIds),
            accounts: ids(form.accounts),
          },
        },
      );
      setForm(blank);
      onIssued(d.inviteUser);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="newuser" onSubmit={submit} data-testid="invite">
      <h3>Invite someone</h3>
      <input name="email" aria-label="Email" type="email" required placeholder="email" value={form.email}
        onInput={(e) => setForm({ ...form, email: e.currentTarget.value })} />
      <select name="role" aria-label="Role" value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value as Role })}>
        <option value="CARDHOLDER">Cardholder</option>
        <option value="ADMIN">Admin</option>
      </select>
      {form.role === "CARDHOLDER" && (
        <input name="cardholderIds" aria-label="Cardholders" placeholder="ich_…, ich_… (the cardholders they may see)"
          value={form.cardholderIds} onInput={(e) => setForm({ ...form, cardholderIds: e.currentTarget.value })} />
      )}
      {/* Set with the user, so that they never see another account, not even once. */}
      <input name="accounts" aria-label="Accounts" placeholder="acct_…, acct_… (empty: all accounts)"
        value={form.accounts} onInput={(e) => setForm({ ...form, accounts: e.currentTarget.value })} />
      {error ? <ErrorNote error={error} /> : null}
      <button type="submit" disabled={busy}>{busy ? "Inviting…" : "Invite"}</button>
    </form>
  );
}

/** The newest invitations, open and closed. `version` changes when one was issued elsewhere. */
export function InvitationList({ version }: { version: number }) {
  const [rows, setRows] = useState<Invitation[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    gql<{ invitations: { nodes: Invitation[] } }>(`{ invitations(first: 50) { nodes { ${INVITATION_FIELDS} } } }`)
      .then((d) => { setRows(d.invitations.nodes); setError(null); })
      .catch(setError);
  }, [version]);
  const revoke = async (id: string) => {
    try {
      const d = await gql<{ revokeInvitation: { invitation: Invitation } }>(
        `mutation($i: RevokeInvitationInput!) { revokeInvitation(input: $i) { invitation { ${INVITATION_FIELDS} } } }`,
        { i: { invitationId: id } },
      );
      setRows((r) => r?.map((x) => (x.id === id ? d.revokeInvitation.invitation : x)) ?? null);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Card title="Invitations">
      {error ? <ErrorNote error={error} /> : null}
      {rows === null ? (!error && <p class="loading" role="status">Loading invitations…</p>) : rows.length === 0 ? (
        <p class="empty">No invitations yet.</p>
      ) : (
        <table class="activity" data-testid="invitations">
          <thead><tr><th>Email</th><th>Role</th><th>Accounts</th><th>Kind</th><th>State</th><th>Invited by</th><th>Expires</th><th /></tr></thead>
          <tbody>
            {rows.map((i) => (
              <tr key={i.id} data-testid="invitation-row" data-email={i.email} data-state={i.state}>
                <td>{i.email}</td>
                <td>{i.role.toLowerCase()}</td>
                <td data-testid="invitation-accounts">{i.accounts.length ? i.accounts.join(", ") : <span class="hint">all</span>}</td>
                <td>{KIND[i.kind]}</td>
                <td><span class={`badge ${i.state.toLowerCase()}`}>{i.state.toLowerCase()}</span></td>
                <td>{i.invitedBy ?? "—"}</td>
                <td>{when(i.expiresAt)}</td>
                <td>{i.state === "PENDING" && <button type="button" class="link" data-testid="revoke" onClick={() => revoke(i.id)}>Revoke</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}
