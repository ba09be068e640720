"use client";
// A viewer's style request box on the watch page: what is applied now and
// for how much longer (counting down), how long a style lasts, where this
// viewer's own request stands in the queue, and why a request was refused
// (one waiting request per viewer; a cooldown between requests).
import Link from "next/link";
import { useState } from "react";
import { api, ApiError, type StyleQueue, type User } from "@/lib/api";
import { useNow } from "@/lib/use-now";

/** The queue as read at |at| (Date.now()): `seconds_left` counts from then. */
export type QueueRead = { queue: StyleQueue; at: number };

export function StyleRequest({
  username,
  styles,
  user,
  read,
  onQueue,
  loginLink,
}: {
  username: string;
  styles: string[];
  user: User | null | undefined;
  read: QueueRead | null;
  onQueue: (queue: StyleQueue) => void;
  loginLink: React.ReactNode;
}) {
  const [style, setStyle] = useState("");
  const [notice, setNotice] = useState<{ text: string; until: number | null } | null>(null);
  const active = read?.queue.active ?? null;
  const mine = user ? read?.queue.queue.find((q) => q.requested_by === user.username) : undefined;
  const ticking = (active && typeof active.seconds_left === "number") || (notice?.until ?? 0) > Date.now();
  const now = useNow(ticking ? 1000 : null);
  const left = active && read && typeof active.seconds_left === "number" ? Math.max(0, active.seconds_left - (now - read.at) / 1000) : null;
  const wait = notice?.until ? Math.ceil(Math.max(0, notice.until - now) / 1000) : 0;

  const request = async (e: React.FormEvent) => {
    e.preventDefault();
    const chosen = style || styles[0];
    if (!chosen) return;
    setNotice(null);
    try {
      onQueue(await api.requestStyle(username, chosen));
      setNotice({ text: `Asked for ${chosen}.`, until: null });
    } catch (err) {
      if (err instanceof ApiError && err.code === "style_pending")
        setNotice({ text: "Your request is still waiting in the queue: one at a time.", until: null });
      else if (err instanceof ApiError && err.code === "rate_limited")
        setNotice({ text: "You asked a moment ago: you can ask again in", until: Date.now() + (err.retryAfter ?? 10) * 1000 });
      else setNotice({ text: err instanceof ApiError ? err.message : String(err), until: null });
    }
  };

  return (
    <form className="card stack-wide" style={{ marginTop: "1rem" }} onSubmit={request} data-testid="style-form">
      <div className="row">
        <span>Request a style</span>
        {user ? (
          <>
            <select value={style || styles[0]} onChange={(e) => setStyle(e.target.value)} aria-label="Style">
              {styles.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
            <button type="submit">Request</button>
          </>
        ) : (
          <span>{loginLink} to request one.</span>
        )}
      </div>
      <p className="muted" style={{ margin: 0 }}>
        {active ? (
          <>
            Now <b>{active.style}</b> (asked by {active.requested_by})
            {left !== null && (
              <>
                , <span data-testid="style-time-left">{Math.ceil(left)}</span> s left
              </>
            )}
            .{" "}
          </>
        ) : null}
        Each request shows for {read?.queue.style_seconds ?? 30} s, in turn
        {read && read.queue.queue.length > 0 && <> · next: {read.queue.queue.map((q) => q.style).join(", ")}</>}.
      </p>
      {mine && (
        <p style={{ margin: 0 }} data-testid="my-position">
          Your request ({mine.style}) is number {mine.position ?? read!.queue.queue.indexOf(mine) + 1} in the queue.
        </p>
      )}
      {notice && (
        <p style={{ margin: 0 }} data-testid="style-notice" role="status">
          {notice.text}
          {notice.until !== null && ` ${wait} s.`}
        </p>
      )}
    </form>
  );
}

export const loginLinks = (username: string) => (
  <>
    <Link href={`/login?next=/${username}`}>Log in</Link> or <Link href={`/signup?next=/${username}`}>sign up</Link>
  </>
);
