// The wait-then-ask step every reconnecting thing shares (the media sockets,
// the WHIP/WHEP peers, the HLS player): after a drop, wait (exponential
// backoff with jitter: 0.25 s doubling to a 5 s cap), then ask the API where
// the stream is now, and act on the answer.

/** The wait before attempt `attempt` (1, 2, ...): half the step for sure, the other half random, so a
 * thousand viewers of a dead worker do not knock on the new one in the same millisecond. */
export function backoffDelay(attempt: number): number {
  const step = Math.min(5000, 250 * 2 ** Math.max(0, attempt - 1));
  return step / 2 + (Math.random() * step) / 2;
}

export type Resolved<T> = {
  /** The API named where to go next. */
  next: (target: T) => void;
  /** The API says the stream is not live any more. */
  ended: () => void;
  /** The API did not answer (the promise was rejected): one more attempt, later. */
  failed: () => void;
};

/** After attempt |attempt|'s backoff, calls |resolve| and one of |then|'s callbacks, unless
 * |current()| says the caller moved on meanwhile (closed, or overtaken by a newer attempt). */
export function resolveAfterBackoff<T>(
  attempt: number,
  resolve: () => Promise<T | null>,
  current: () => boolean,
  then: Resolved<T>,
): ReturnType<typeof setTimeout> {
  return setTimeout(async () => {
    let next: T | null | undefined;
    try {
      next = await resolve();
    } catch {
      next = undefined;
    }
    if (!current()) return;
    if (next === null) then.ended();
    else if (next === undefined) then.failed();
    else then.next(next);
  }, backoffDelay(attempt));
}
