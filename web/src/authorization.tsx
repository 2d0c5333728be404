// One authorization: what was asked, the decisions in its request history, and the captures
// and refunds that followed.

import { useEffect, useState } from "preact/hooks";
import { gql, type Money } from "./api";
import { reasonWords } from "./reasons";
import { DisputeList, type Dispute } from "./disputes";
import { Card, ErrorNote, Link, Loading } from "./ui";

interface Auth {
  id: string;
  cardId: string;
  amount: Money;
  merchantAmount: Money | null;
  heldAmount: Money;
  outcome: string;
  rawStatus: string;
  declineReason: string | null;
  cardstreamReason: string | null;
  created: string;
  merchant: { name: string | null; category: string; city: string | null; country: string | null };
  requestHistory: { approved: boolean; reason: string; amount: Money; created: string }[];
  verification: {
    addressLine1Check: string | null; addressPostalCodeCheck: string | null; cvcCheck: string | null;
    expiryCheck: string | null; threeDSecure: string | null;
  } | null;
  networkData: { acquiringInstitutionId: string | null; systemTraceAuditNumber: string | null; transactionId: string | null } | null;
  transactions: { id: string; rawKind: string; amount: Money; created: string; dispute: Dispute | null }[];
}

const QUERY = `query($id: ID!) { authorization(id: $id) { id cardId outcome rawStatus declineReason cardstreamReason created
  amount { currency formatted } merchantAmount { currency formatted } heldAmount { formatted } merchant { name category city country }
  requestHistory { approved reason created amount { formatted } }
  verification { addressLine1Check addressPostalCodeCheck cvcCheck expiryCheck threeDSecure }
  networkData { acquiringInstitutionId systemTraceAuditNumber transactionId }
  transactions { id rawKind created amount { formatted } dispute { id transactionId rawStatus reason lossReason created fundsReinstatedAt fundsRescindedAt amount { amount currency formatted } } } } }`;

export function AuthorizationView({ id }: { id: string }) {
  const [auth, setAuth] = useState<Auth | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    gql<{ authorization: Auth }>(QUERY, { id }).then((d) => setAuth(d.authorization)).catch(setError);
  }, [id]);
  if (error) return <ErrorNote error={error} />;
  if (!auth) return <Loading what="the authorization" />;
  const disputes = auth.transactions.flatMap((t) => (t.dispute ? [t.dispute] : []));
  const m = auth.merchant;
  return (
    <div class="detail" data-testid="authorization">
      <p class="back"><Link href={`/cards/${auth.cardId}`}>← Back to the card</Link></p>
      <h1>{m.name ?? "Unknown merchant"} · {auth.amount.formatted}</h1>
      {auth.merchantAmount && auth.merchantAmount.currency !== auth.amount.currency && (
        <p data-testid="merchant-amount">Abroad: {auth.merchantAmount.formatted} → {auth.amount.formatted} on the card</p>
      )}
      <p>
        <span class={`badge ${auth.outcome.toLowerCase()}`}>{auth.outcome.toLowerCase()}</span> {auth.rawStatus} ·{" "}
        {new Date(auth.created).toLocaleString()} · {m.category.replaceAll("_", " ")}
        {m.city ? ` · ${m.city}` : ""}{m.country ? `, ${m.country}` : ""}
      </p>
      {auth.outcome === "DECLINED" && (
        <p class="note">Declined: {auth.cardstreamReason ?? auth.declineReason ? reasonWords((auth.cardstreamReason ?? auth.declineReason)!) : "no reason given"}</p>
      )}
      {auth.cardstreamReason === "partially_approved" && (
        <p class="note" data-testid="partial">Partially approved: the request asked for more than the card's spend limit had left, and cardstream approved what was left.</p>
      )}
      <p>Held now: {auth.heldAmount.formatted}</p>
      <Card title="Request history">
        {auth.requestHistory.length === 0 ? <p class="empty">No decision yet.</p> : (
          <ul>
            {auth.requestHistory.map((h) => (
              <li key={h.created + h.reason}>
                {new Date(h.created).toLocaleString()}: {h.approved ? "approved" : "declined"} {h.amount.formatted} ({reasonWords(h.reason)})
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title="Checks">
        {auth.verification ? (
          <ul data-testid="checks">
            <li>CVC: {checkWords(auth.verification.cvcCheck)}</li>
            <li>Expiry: {checkWords(auth.verification.expiryCheck)}</li>
            <li>Address: {checkWords(auth.verification.addressLine1Check)}</li>
            <li>Postal code: {checkWords(auth.verification.addressPostalCodeCheck)}</li>
            <li>3-D Secure: {auth.verification.threeDSecure?.replaceAll("_", " ") ?? "not used"}</li>
          </ul>
        ) : <p class="empty">Stripe sent no checks.</p>}
        {auth.networkData && (
          <p class="hint" data-testid="network">
            Network: transaction {auth.networkData.transactionId ?? "—"}, acquirer {auth.networkData.acquiringInstitutionId ?? "—"}
            {auth.networkData.systemTraceAuditNumber ? `, trace ${auth.networkData.systemTraceAuditNumber}` : ""}
          </p>
        )}
      </Card>
      <Card title="Transactions">
        {auth.transactions.length === 0 ? <p class="empty">Nothing captured.</p> : (
          <ul>
            {auth.transactions.map((t) => (
              <li key={t.id}>{new Date(t.created).toLocaleString()}: {t.rawKind} {t.amount.formatted}</li>
            ))}
          </ul>
        )}
      </Card>
      {disputes.length > 0 && (
        <Card title="Dispute">
          <DisputeList disputes={disputes} />
        </Card>
      )}
    </div>
  );
}

/** A check's result as Stripe words it (`match`, `mismatch`, `not_provided`, `unavailable`). */
function checkWords(check: string | null): string {
  switch (check) {
    case "match": return "matched";
    case "mismatch": return "did not match";
    case null: return "not sent";
    default: return check.replaceAll("_", " ");
  }
}
