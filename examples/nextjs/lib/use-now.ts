"use client";
import { useEffect, useState } from "react";

/** Date.now(), refreshed every |ms| while mounted (null: read once): for clocks and countdowns.
 * 0 until mounted, so that a page rendered on the server and hydrated in the browser shows the
 * same text in both (a clock read twice never agrees); callers show no time while it is 0. */
export function useNow(ms: number | null = 1000): number {
  const [now, setNow] = useState(0);
  useEffect(() => {
    setNow(Date.now());
    if (ms === null) return;
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}
