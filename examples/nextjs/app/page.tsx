"use client";
// The live channels (GET /api/channels/live, most viewers first), read
// again every 5 s: title, viewers and a recent processed frame each (the
// worker's thumbnail, itself refreshed every 2 s; a new query string makes
// the browser fetch it again). A username box for channels not live.
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { api, formatClock, secondsSince, type LiveChannel } from "@/lib/api";
import { useSession } from "@/lib/session";
import { useInterval } from "@/lib/use-interval";

const kPollMs = 5000;

export default function Home() {
  const { user } = useSession();
  const router = useRouter();
  const [channel, setChannel] = useState("");
  const [live, setLive] = useState<LiveChannel[] | null>(null);
  const [read, setRead] = useState(0); // when `live` was read: refreshes the thumbnails
  useInterval(() => {
    api.liveChannels().then(
      (r) => {
        setLive(r.channels);
        setRead(Date.now());
      },
      () => setLive((l) => l ?? []),
    );
  }, kPollMs);
  return (
    <>
      <h1>Live now</h1>
      {live === null ? (
        <p className="muted">Loading…</p>
      ) : live.length === 0 ? (
        <p className="muted" data-testid="no-live-channels">
          Nobody is live right now.
        </p>
      ) : (
        <ul className="channel-grid" data-testid="live-channels">
          {live.map((c) => (
            <li key={c.username} className="card channel-card" data-testid="live-channel" data-username={c.username}>
              <Link href={`/${c.username}`}>
                {c.thumbnail ? (
                  // A plain <img>: the worker's JPEG, refreshed by a new query each poll.
                  // eslint-disable-next-line @next/next/no-img-element
                  <img className="thumb" src={`${c.thumbnail}${c.thumbnail.includes("?") ? "&" : "?"}t=${read}`} alt={`${c.display_name || c.username}, live`} data-testid="channel-thumbnail" />
                ) : (
                  <div className="thumb" aria-hidden />
                )}
                <span className="badge">LIVE</span> <b>{c.display_name || c.username}</b>
              </Link>
              <div className="wrap-anywhere">{c.title}</div>
              <div className="muted">
                <span data-testid="channel-viewers">{c.viewers}</span> watching · {formatClock(secondsSince(c.started_at, read))}
              </div>
            </li>
          ))}
        </ul>
      )}
      <div className="grid">
        <section className="card">
          <h2>Watch a channel</h2>
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              if (channel.trim()) router.push(`/${channel.trim().toLowerCase()}`);
            }}
          >
            <input placeholder="username" value={channel} onChange={(e) => setChannel(e.target.value)} aria-label="Channel" />
            <button type="submit">Watch</button>
          </form>
        </section>
        <section className="card">
          <h2>Stream</h2>
          {user ? (
            <p>
              Go live from your camera or OBS on your <Link href="/dashboard">dashboard</Link>.
            </p>
          ) : (
            <p>
              <Link href="/signup">Sign up</Link> or <Link href="/login">log in</Link>, buy credits, and go live from your camera or OBS.
            </p>
          )}
        </section>
      </div>
    </>
  );
}
