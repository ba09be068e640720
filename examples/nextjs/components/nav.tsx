"use client";
import Link from "next/link";
import { api, formatClock, secondsSince } from "@/lib/api";
import { creditWarning, useLive } from "@/lib/live";
import { useNow } from "@/lib/use-now";
import { useSession } from "@/lib/session";

export function Nav() {
  const { user } = useSession();
  const { dash, ingest } = useLive();
  const live = dash?.live ?? false;
  const now = useNow(live ? 1000 : null);
  // A full page load: nothing of the old session stays in memory, and no
  // page that needs a user redirects to /login on the way out.
  const logout = async () => {
    if (ingest.stats.sending && !window.confirm("You are live from this tab's camera. Log out and stop the camera?")) return;
    ingest.stop();
    await api.logout().catch(() => {});
    window.location.assign("/");
  };
  return (
    <nav className="nav">
      <Link href="/" className="brand">
        Mirage
      </Link>
      {live && dash?.stream && (
        <Link href="/dashboard" className="badge nav-live" data-testid="nav-live" title="You are live: the dashboard">
          LIVE <span data-testid="nav-live-elapsed">{formatClock(secondsSince(dash.stream.started_at, now))}</span>
        </Link>
      )}
      {user && (
        <>
          <Link href="/dashboard">Dashboard</Link>
          <Link href="/dashboard/credits">Credits</Link>
          <Link href={`/${user.username}`}>My channel</Link>
          <Link href="/settings">Profile</Link>
          <span className="spacer" />
          <span className="muted nav-user">{user.username}</span>
          <button className="link" onClick={logout}>
            Log out
          </button>
        </>
      )}
      {user === null && (
        <>
          <span className="spacer" />
          <Link href="/login">Log in</Link>
          <Link href="/signup">Sign up</Link>
        </>
      )}
    </nav>
  );
}

/** Under the nav on every page, for the streamer while live: the credits warnings. */
export function StreamerBar() {
  const { dash, secondsLeft } = useLive();
  const warning = dash?.live ? creditWarning(secondsLeft) : null;
  if (!warning) return null;
  return (
    <div className={`warning-bar level-${warning.level}`} role="alert" data-testid="credit-warning" data-level={warning.level}>
      {warning.text} <Link href="/dashboard/credits">Buy credits</Link>
    </div>
  );
}
