// A card's disputes, shown on its page and on the page of the authorization they concern: what
// Stripe decided and what happened to the money. Reinstated funds go back to the program's
// Issuing balance; the card's spend still counts the purchase (README, "Disputes").
import type { Money } from "./api";

export interface Dispute {
  id: string; transactionId: string; amount: Money; rawStatus: string; reason: string | null;
  lossReason: string | null; created: string; fundsReinstatedAt: string | null; fundsRescindedAt: string | null;
}

const words = (s: string) => s.replaceAll("_", " ");

const STATUS: Record<string, string> = {
  unsubmitted: "opened", submitted: "submitted", won: "won", lost: "lost", expired: "expired",
};

/** What became of the disputed money, in a sentence. */
function funds(d: Dispute): string {
  if (d.fundsRescindedAt) return `${d.amount.formatted} reinstated, then rescinded`;
  if (d.fundsReinstatedAt) return `${d.amount.formatted} reinstated to the program; spend unchanged`;
  if (d.rawStatus === "lost") return d.lossReason ? `lost: ${words(d.lossReason)}` : "lost";
  if (d.rawStatus === "expired") return "never submitted";
  return "awaiting the network";
}

export function DisputeList({ disputes }: { disputes: Dispute[] }) {
  if (disputes.length === 0) return <p class="empty">No disputes.</p>;
  return (
    <ul class="disputes">
      {disputes.map((d) => (
        <li key={d.id} data-testid="dispute" data-id={d.id}>
          <span class={`badge dispute-${d.rawStatus}`}>{STATUS[d.rawStatus] ?? words(d.rawStatus)}</span>{" "}
          {d.amount.formatted}
          {d.reason ? ` · ${words(d.reason)}` : ""} · opened {new Date(d.created).toLocaleDateString()}
          <span class="hint"> · {funds(d)}</span>
        </li>
      ))}
    </ul>
  );
}
