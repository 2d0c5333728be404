// Users, for admins: role, the cardholders a cardholder may see, the Stripe Connect accounts a
// user is limited to (none: every account), disable and enable, password
// reset (a one-time link, as for an invitation), delete. There is no sign-up and no admin-chosen
// password: people join through an invitation (invitations.tsx) and set their own.
// The server ends a user's sessions when they are disabled, deleted or reset, so their open
// tabs sign out; the table only shows what the server answered.

import { useEffect, useState } from "preact/hooks";
import { gql, nextCursor, when, type ApiError, type Connection } from "./api";
import { Card, ErrorNote } from "./ui";
import { ids, InvitationList, InviteForm, INVITATION_FIELDS, OneTimeLink, type Issued, type Role } from "./invitations";

interface User { id: string; email: string; role: Role; cardholderIds: string[]; accounts: string[]; disabled: boolean; createdAt: string }

const USER_FIELDS = "id email role cardholderIds accounts disabled createdAt";
const PAGE = 50;

/** Users, the invitation form and the invitations, which share the one-time link on show. */
export function People({ self }: { self: string }) {
  const [issued, setIssued] = useState<Issued | null>(null);
  const [invitations, setInvitations] = useState(0);
  const show = (i: Issued) => { setIssued(i); setInvitations((v) => v + 1); };
  return (
    <>
      <Card title="Users">
        {issued && <OneTimeLink issued={issued} onDone={() => setIssued(null)} />}
        <UserTable self={self} onIssued={show} />
        <InviteForm onIssued={show} />
      </Card>
      <InvitationList version={invitations} />
    </>
  );
}

function UserTable({ self, onIssued }: { self: string; onIssued: (i: Issued) => void }) {
  const [users, setUsers] = useState<User[] | null>(null);
  // Where the next page starts; null when the last page is shown.
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const page = (after: string | null) =>
    gql<{ users: Connection<User> }>(
      `query($first: Int!, $after: String) { users(first: $first, after: $after) { nodes { ${USER_FIELDS} } pageInfo { hasNextPage endCursor } } }`,
      { first: PAGE, after },
    )
      .then((d) => {
        setUsers((u) => [...(after ? u ?? [] : []), ...d.users.nodes]);
        setNext(nextCursor(d.users));
      })
      .catch(setError);
  useEffect(() => { page(null); }, []);

  const replace = (user: User) => setUsers((u) => u?.map((x) => (x.id === user.id ? user : x)) ?? null);
  const remove = (id: string) => setUsers((u) => u?.filter((x) => x.id !== id) ?? null);

  if (error) return <ErrorNote error={error} />;
  if (!users) return <p class="loading" role="status">Loading users…</p>;
  return (
    <>
      <table class="activity users" data-testid="users">
        <thead><tr><th>Email</th><th>Role</th><th>Cardholders</th><th>Accounts</th><th>Status</th><th>Since</th><th>Actions</th></tr></thead>
        <tbody>
          {users.map((u) => (
            <UserRow key={u.id} user={u} self={u.id === self} onChanged={replace} onDeleted={remove} onIssued={onIssued} />
          ))}
        </tbody>
      </table>
      {next && <button type="button" class="link" onClick={() => page(next)}>Show more users</button>}
    </>
  );
}

function UserRow({ user, self, onChanged, onDeleted, onIssued }: {
  user: User;
  self: boolean;
  onChanged: (u: User) => void;
  onDeleted: (id: string) => void;
  onIssued: (i: Issued) => void;
}) {
  const [holders, setHolders] = useState(user.cardholderIds.join(", "));
  const [accounts, setAccounts] = useState(user.accounts.join(", "));
  const [confirm, setConfirm] = useState<"delete" | "reset" | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => setHolders(user.cardholderIds.join(", ")), [user.cardholderIds.join(",")]);
  useEffect(() => setAccounts(user.accounts.join(", ")), [user.accounts.join(",")]);

  /** Runs one mutation for this row; the row shows its error, if any. */
  const act = async (run: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await run();
      setConfirm(null);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  /** A mutation on this user whose payload is the user as it now is. Its input type is named
   * after it (`setUserRole` takes a `SetUserRoleInput`), as for every mutation of the API. */
  const userMutation = (name: "setUserRole" | "setUserCardholders" | "setUserAccounts" | "enableUser" | "disableUser", input: Record<string, unknown> = {}) =>
    act(async () => {
      const type = `${name[0].toUpperCase()}${name.slice(1)}Input`;
      const d = await gql<Record<string, { user: User }>>(
        `mutation($i: ${type}!) { ${name}(input: $i) { user { ${USER_FIELDS} } } }`,
        { i: { userId: user.id, ...input } },
      );
      onChanged(d[name].user);
    });
  const setRole = (role: Role) => userMutation("setUserRole", { role });
  const saveHolders = () => userMutation("setUserCardholders", { cardholderIds: ids(holders) });
  const saveAccounts = () => userMutation("setUserAccounts", { accounts: ids(accounts) });
  const toggle = () => userMutation(user.disabled ? "enableUser" : "disableUser");
  const reset = () => act(async () => {
    const d = await gql<{ resetPassword: Issued }>(
      `mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { token invitation { ${INVITATION_FIELDS} } } }`,
      { i: { userId: user.id } },
    );
    onIssued(d.resetPassword);
  });
  const remove = () => act(async () => {
    await gql<{ deleteUser: { deletedUserId: string } }>(
      `mutation($i: DeleteUserInput!) { deleteUser(input: $i) { deletedUserId } }`, { i: { userId: user.id } },
    );
    onDeleted(user.id);
  });

  const changed = ids(holders).join(",") !== user.cardholderIds.join(",");
  const accountsChanged = ids(accounts).join(",") !== user.accounts.join(",");
  return (
    <tr data-testid="user-row" data-email={user.email} data-disabled={String(user.disabled)} aria-busy={busy}>
      <td>{user.email}{self && <span class="hint"> (you)</span>}</td>
      <td>
        {/* Not one's own: an admin demoting themself would lose this page halfway through. */}
        <select aria-label={`Role of ${user.email}`} data-testid="user-role" value={user.role} disabled={busy || self}
          onChange={(e) => setRole(e.currentTarget.value as Role)}>
          <option value="CARDHOLDER">Cardholder</option>
          <option value="ADMIN">Admin</option>
        </select>
      </td>
      <td>
        {user.role === "ADMIN" ? <span class="hint">all (admin)</span> : (
          <form class="inline" onSubmit={(e) => { e.preventDefault(); saveHolders(); }}>
            <input aria-label={`Cardholders of ${user.email}`} data-testid="user-cardholders" placeholder="ich_…, ich_…"
              value={holders} onInput={(e) => setHolders(e.currentTarget.value)} />
            {changed && <button type="submit" disabled={busy} data-testid="user-cardholders-save">Save</button>}
          </form>
        )}
      </td>
      <td>
        {/* Not one's own: limiting oneself would lose this page halfway through. */}
        <form class="inline" onSubmit={(e) => { e.preventDefault(); saveAccounts(); }}>
          <input aria-label={`Accounts of ${user.email}`} data-testid="user-accounts" placeholder="all accounts" disabled={self}
            value={accounts} onInput={(e) => setAccounts(e.currentTarget.value)} />
          {accountsChanged && <button type="submit" disabled={busy} data-testid="user-accounts-save">Save</button>}
        </form>
      </td>
      <td>
        <span class={`badge ${user.disabled ? "disabled" : "active"}`} data-testid="user-status">{user.disabled ? "disabled" : "active"}</span>
      </td>
      <td>{when(user.createdAt)}</td>
      <td>
        <div class="actions">
          {confirm ? (
            <span class="confirm" role="group" aria-label="Confirm">
              {confirm === "delete" ? `Delete ${user.email}? ` : `Reset ${user.email}'s password and sign them out? `}
              <button type="button" class={confirm === "delete" ? "danger" : undefined} disabled={busy}
                data-testid={confirm === "delete" ? "user-delete-confirm" : "user-reset-confirm"}
                onClick={confirm === "delete" ? remove : reset}>
                {confirm === "delete" ? "Yes, delete" : "Yes, reset"}
              </button>{" "}
              <button type="button" class="link" onClick={() => setConfirm(null)}>Cancel</button>
            </span>
          ) : (
            <>
              <button type="button" class="link" disabled={busy || self} data-testid={user.disabled ? "user-enable" : "user-disable"} onClick={toggle}>
                {user.disabled ? "Enable" : "Disable"}
              </button>
              <button type="button" class="link" disabled={busy || self} data-testid="user-reset" onClick={() => setConfirm("reset")}>Reset password</button>
              <button type="button" class="link danger" disabled={busy || self} data-testid="user-delete" onClick={() => setConfirm("delete")}>Delete</button>
            </>
          )}
        </div>
        {error ? <RowError error={error} /> : null}
      </td>
    </tr>
  );
}

/** A refused action says the server's reason (CONFLICT, BAD_USER_INPUT: e.g. an unknown
 * cardholder); ErrorNote's wording is for pages, not actions. */
function RowError({ error }: { error: unknown }) {
  const e = error as ApiError;
  if (e?.code === "FORBIDDEN" || e?.code === "NOT_FOUND" || e?.code === "RATE_LIMITED") return <ErrorNote error={error} />;
  return <p class="error" role="alert" data-code={e?.code}>{e?.message ?? "Something went wrong."}</p>;
}
