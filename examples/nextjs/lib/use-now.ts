"use client";
import { useEffect, useState } from "react";

/** Date.now(), refreshed every |ms| while mounted (null: not ticking): for clocks and countdowns. */
export function useNow(ms: number | null = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (ms === null) return;
    setNow(Date.now());
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}
