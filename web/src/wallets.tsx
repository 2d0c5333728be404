// A card's wallet tokens: where the card lives on phones and watches (Apple Pay, Google Pay,
// Samsung Pay), and whether each can still pay.
export interface WalletToken {
  id: string; walletProvider: string | null; rawStatus: string; deviceType: string | null;
  network: string | null; last4: string | null; created: string;
}

const WALLETS: Record<string, string> = { apple_pay: "Apple Pay", google_pay: "Google Pay", samsung_pay: "Samsung Pay" };

/** "Apple Pay", or Stripe's word for a wallet this build does not name. */
export const walletName = (w: string | null) => (w ? WALLETS[w] ?? w.replaceAll("_", " ") : "No wallet");

export function WalletList({ tokens }: { tokens: WalletToken[] }) {
  if (tokens.length === 0) return <p class="empty">Not in any wallet.</p>;
  return (
    <ul class="wallets">
      {tokens.map((t) => (
        <li key={t.id} data-testid="token" data-id={t.id}>
          <span class={`badge token-${t.rawStatus}`}>{t.rawStatus}</span>{" "}
          {walletName(t.walletProvider)}
          {t.deviceType ? ` · ${t.deviceType}` : ""}
          {t.last4 ? ` · token ••${t.last4}` : ""}
          <span class="hint"> · added {new Date(t.created).toLocaleDateString()}</span>
        </li>
      ))}
    </ul>
  );
}
