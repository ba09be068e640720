"use client";
// The streamer's live state, above every page (app/layout.tsx): the camera
// ingest, the dashboard answer and the credits countdown. Kept here, not in
// the dashboard page, so that moving between the app's pages (Credits,
// Profile, the watch page) neither stops the camera nor loses the stream;
// only a real page unload does, and the browser asks first
// (beforeunload) while the camera is sending.
//
// GET /api/me/dashboard is polled every 2 s while live or on the dashboard,
// every 15 s otherwise (a stream started from OBS shows up in the nav). The
// time left counts down by one a second between answers while the API says
// the live stream is being billed (`counting_down`).
import { usePathname } from "next/navigation";
import { createContext, useCallback, useContext, useEffect, useRef, useState } from "react";
import { api, type Dashboard, type Ingest } from "./api";
import { useSession } from "./session";
import { useCameraIngest } from "./use-camera-ingest";
import { useInterval } from "./use-interval";
import { useNow } from "./use-now";

/** How a stream of this user ended, once it ended while the app was open. */
export type Ended = { streamId: number | null; reason: string | null };

type Live = {
  /** The newest dashboard answer (null: none yet, or no user). */
  dash: Dashboard | null;
  /** Asks for the dashboard now; the answer is kept and returned (null when the API failed). */
  refresh: () => Promise<Dashboard | null>;
  /** Changes the kept answer in place (an event said the viewers changed, say). */
  update: (change: (d: Dashboard) => Dashboard) => void;
  ingest: ReturnType<typeof useCameraIngest>;
  /** The credits' time left now, counting down while billed; null before the first answer. */
  secondsLeft: number | null;
  /** The latest stream's end, seen while the app was open (cleared by going live). */
  ended: Ended | null;
  clearEnded: () => void;
  /** The ingest URLs the API names now, for the camera's reconnects (null: not live). */
  resolveIngest: () => Promise<Ingest | null>;
};

const LiveContext = createContext<Live | null>(null);

export function LiveProvider({ children }: { children: React.ReactNode }) {
  const { user } = useSession();
  const pathname = usePathname();
  const ingest = useCameraIngest();
  const [state, setState] = useState<{ dash: Dashboard; at: number } | null>(null);
  const [ended, setEnded] = useState<Ended | null>(null);
  const wasLive = useRef<number | null>(null); // the live stream's id at the last answer
  const now = useNow(state?.dash.counting_down ? 1000 : null);

  const noteEnd = useCallback(async (reason: string | null) => {
    let id = wasLive.current;
    let why = reason;
    try {
      const latest = (await api.streamHistory()).streams[0]?.stream;
      if (latest) {
        id = latest.id;
        why = why || latest.end_reason;
      }
    } catch {
      // the reason we have is enough
    }
    setEnded((e) => (e && e.streamId === id && e.reason ? e : { streamId: id, reason: why }));
  }, []);

  const keep = useCallback(
    (d: Dashboard) => {
      setState({ dash: d, at: Date.now() });
      const id = d.live ? (d.stream?.id ?? null) : null;
      if (wasLive.current !== null && id === null) void noteEnd(null);
      if (id !== null) setEnded(null);
      wasLive.current = id;
    },
    [noteEnd],
  );
  const refresh = useCallback(async () => {
    try {
      const d = await api.dashboard();
      keep(d);
      return d;
    } catch {
      return null;
    }
  }, [keep]);
  const update = useCallback((change: (d: Dashboard) => Dashboard) => setState((s) => (s ? { ...s, dash: change(s.dash) } : s)), []);

  const live = state?.dash.live ?? false;
  const fast = live || ingest.stats.sending || pathname.startsWith("/dashboard");
  useInterval(() => void refresh(), user ? (fast ? 2000 : 15000) : null);
  useEffect(() => {
    if (user === null) {
      setState(null);
      wasLive.current = null;
    }
  }, [user]);

  const resolveIngest = useCallback(async () => {
    const d = await api.dashboard();
    keep(d);
    return d.live ? d.ingest : null;
  }, [keep]);

  // The ingest saw the end (the worker's close 1000 with the reason, or the
  // API said the stream is over while it reconnected): the camera goes off.
  const endedReason = ingest.stats.ended;
  const stopCamera = ingest.stop;
  useEffect(() => {
    if (endedReason === null) return;
    stopCamera();
    void noteEnd(endedReason || null);
    void refresh();
  }, [endedReason, stopCamera, noteEnd, refresh]);

  // Leaving the app (reload, closing the tab, another site) stops the camera: ask first.
  const sending = ingest.stats.sending;
  useEffect(() => {
    if (!sending) return;
    const warn = (event: BeforeUnloadEvent) => {
      event.preventDefault();
      event.returnValue = ""; // older browsers want it set
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [sending]);

  let secondsLeft: number | null = null;
  if (state) {
    const d = state.dash;
    secondsLeft = d.counting_down ? Math.max(0, d.seconds_remaining - Math.max(0, now - state.at) / 1000) : d.seconds_remaining;
  }
  const value: Live = {
    dash: user ? (state?.dash ?? null) : null,
    refresh,
    update,
    ingest,
    secondsLeft: user ? secondsLeft : null,
    ended,
    clearEnded: useCallback(() => setEnded(null), []),
    resolveIngest,
  };
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export function useLive(): Live {
  const live = useContext(LiveContext);
  if (!live) throw new Error("useLive outside LiveProvider");
  return live;
}

/** Warnings before the credits run out: under 5 minutes, then under 1. */
export function creditWarning(secondsLeft: number | null): { level: 5 | 1; text: string } | null {
  if (secondsLeft === null) return null;
  if (secondsLeft <= 60) return { level: 1, text: "Less than 1 minute of credits left: the stream ends when they run out." };
  if (secondsLeft <= 300) return { level: 5, text: "Less than 5 minutes of credits left." };
  return null;
}

/** Going live needs more than 1 credit (600 s). */
export const kMinSecondsToGoLive = 600;
