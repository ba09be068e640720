"use client";
import { formatDuration, secondsUntil, type ChatBan } from "@/lib/api";
import { useNow } from "@/lib/use-now";

/** Who may not write in the channel's chat, with a button to lift each. */
export function BanList({ bans, onLift }: { bans: ChatBan[]; onLift: (username: string) => void }) {
  const now = useNow(bans.some((b) => b.until) ? 1000 : null);
  if (bans.length === 0) return null;
  return (
    <div data-testid="bans">
      <h3>Banned and timed out</h3>
      <ul className="plain">
        {bans.map((b) => (
          <li key={b.username} data-testid="ban" data-username={b.username}>
            <b>{b.username}</b>{" "}
            <span className="muted">
              {b.until ? `timed out${now ? `, ${formatDuration(secondsUntil(b.until, now))} left` : ""}` : "banned"}
            </span>{" "}
            <button className="link" onClick={() => onLift(b.username)} data-testid="lift-ban">
              lift
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
