"use client";
// Buying credits: POST /api/credits/checkout, then the browser goes to
// Stripe Checkout and comes back here (?session_id=... or ?canceled=1,
// the daemon's --checkout-success-url and --checkout-cancel-url). The
// credits arrive through Stripe's webhook, so this page watches for them.
// A cancelled checkout is closed at Stripe and marked cancelled
// (POST /api/credits/checkout/{id}/cancel) with the session id this tab
// kept when it left for Checkout (the cancel URL does not carry it).
import { useSearchParams } from "next/navigation";
import { Suspense, useEffect, useState } from "react";
import { api, ApiError, formatDuration, formatMoney, type Pack, type Receipt } from "@/lib/api";
import { useLive } from "@/lib/live";
import { useRequiredUser } from "@/lib/require-user";
import { useInterval } from "@/lib/use-interval";

function Credits() {
  const user = useRequiredUser();
  const params = useSearchParams();
  const returned = params.get("session_id");
  const [packs, setPacks] = useState<Pack[]>([]);
  const [balance, setBalance] = useState<{ credits: number; seconds: number } | null>(null);
  const [receipts, setReceipts] = useState<Receipt[]>([]);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [cancelled, setCancelled] = useState<"cancelling" | "cancelled" | "paid" | null>(null);
  const { secondsLeft } = useLive();
  const canceledParam = params.get("canceled");

  useEffect(() => {
    api.packs().then((r) => setPacks(r.packs), (e) => setError(String(e.message ?? e)));
  }, []);
  const load = async () => {
    const [d, t] = await Promise.all([api.dashboard(), api.transactions()]);
    setBalance({ credits: d.credits, seconds: d.seconds_remaining });
    setReceipts(t.transactions);
  };
  // The payment just made is the newest; it stays pending until the webhook.
  const newest = receipts.reduce<Receipt | undefined>((a, r) => (!a || r.id > a.id ? r : a), undefined);
  const waiting = Boolean(returned) && (!newest || newest.status === "pending");
  useInterval(() => {
    if (user) load().catch(() => {});
  }, user ? (waiting ? 1000 : 10000) : null);

  // Back from Checkout's cancel link: close the session this tab opened.
  useEffect(() => {
    if (!user || !canceledParam) return;
    const id = sessionStorage.getItem(kCheckoutKey);
    if (!id) return;
    sessionStorage.removeItem(kCheckoutKey);
    setCancelled("cancelling");
    api.cancelCheckout(id).then(
      () => setCancelled("cancelled"),
      (err) => setCancelled(err instanceof ApiError && err.code === "already_paid" ? "paid" : "cancelled"),
    ).finally(() => void load().catch(() => {}));
  }, [user, canceledParam]);

  const buy = async (pack: string) => {
    setBusy(true);
    setError("");
    try {
      const { checkout_url, session_id } = await api.checkout(pack);
      sessionStorage.setItem(kCheckoutKey, session_id);
      window.location.assign(checkout_url);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
      setBusy(false);
    }
  };
  if (!user) return null;
  return (
    <>
      <h1>Credits</h1>
      {returned && (
        <p className="card" data-testid="checkout-return">
          {waiting
            ? "Payment received; waiting for Stripe to confirm it…"
            : newest?.status === "paid"
              ? "Thank you! Your credits are in."
              : `Payment ${newest?.status ?? ""}.`}
        </p>
      )}
      {canceledParam && (
        <p className="card" data-testid="checkout-cancelled" data-state={cancelled ?? ""}>
          {cancelled === "paid" ? "That checkout was paid already: your credits are in." : "Checkout cancelled; nothing was charged."}
        </p>
      )}
      <section className="card">
        <div className="stats">
          <div>
            <b data-testid="credits">{balance ? balance.credits.toFixed(1) : "…"}</b> credits
          </div>
          <div>
            <b data-testid="time-left">{secondsLeft !== null ? formatDuration(secondsLeft) : balance ? formatDuration(balance.seconds) : "…"}</b> of streaming left
          </div>
        </div>
        <p className="muted">One credit is 10 minutes of live processing.</p>
      </section>
      <section className="card">
        <h2>Buy credits</h2>
        <div className="row">
          {packs.map((p) => (
            <button key={p.id} className="primary" disabled={busy} onClick={() => buy(p.id)} data-pack={p.id}>
              {p.credits} credits · {formatMoney(p.amount, p.currency)}
            </button>
          ))}
        </div>
        {error && <p className="error">{error}</p>}
      </section>
      <section className="card">
        <h2>Payments</h2>
        {receipts.length === 0 ? (
          <p className="muted">None yet.</p>
        ) : (
          <div className="scroll-x">
          <table data-testid="payments">
            <thead>
              <tr>
                <th>Receipt</th>
                <th>Date</th>
                <th>Credits</th>
                <th>Amount</th>
                <th>Status</th>
              </tr>
            </thead>
            <tbody>
              {receipts.map((r) => (
                <tr key={r.id}>
                  <td>
                    <a href={api.receiptUrl(r.id)} target="_blank" rel="noreferrer">
                      {r.number}
                    </a>
                  </td>
                  <td>{new Date(r.date).toLocaleString()}</td>
                  <td>{r.credits}</td>
                  <td>{formatMoney(r.amount, r.currency)}</td>
                  <td data-testid="payment-status">{r.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
          </div>
        )}
      </section>
    </>
  );
}

const kCheckoutKey = "mirage-checkout-session";

export default function CreditsPage() {
  return (
    <Suspense>
      <Credits />
    </Suspense>
  );
}
