// A WebSocket that comes back by itself. Media sockets live on the stream's
// media worker, and a worker may die (its streams are re-placed on another
// one within seconds) or hand a stream over (close 4001 "moved"); either
// way the URL to use next comes from the API, never from the old socket. So
// after a drop this waits (exponential backoff with jitter: 0.25 s doubling
// to a 5 s cap, reset once a socket has worked), asks `resolve` for the URL
// the API names now, and connects there. A close that is the stream's end
// (`endOf`) or an API that says the stream is not live any more stops it.

import { resolveAfterBackoff } from "./backoff";

export type SocketState =
  | { kind: "open" } // connected (frames may not have come yet)
  | { kind: "down"; attempt: number } // dropped; attempt N is being prepared
  | { kind: "ended"; reason: string | null }; // the stream ended (reason from the close), or the API says not live (null)

export type ReconnectOptions = {
  url: string;
  /** The URL the API names now; null when the stream is not live any more. A
   * rejection (the API unreachable) counts as a failed attempt: tried again. */
  resolve: () => Promise<string | null>;
  /** Prepares each new socket: binaryType, onmessage. */
  setup: (socket: WebSocket) => void;
  /** The end reason when a close is the stream's end (not a drop); null otherwise. */
  endOf?: (event: CloseEvent) => string | null;
  onState?: (state: SocketState) => void;
  /** For the console line "NAME: reconnecting to URL (attempt N)". */
  name: string;
};

// A socket that stayed open this long (or delivered a message) worked: the
// next drop starts the backoff over. A worker that accepts and at once
// closes ("not live" there yet) therefore does not reset it.
const kSteadyMs = 3000;

export class ReconnectingSocket {
  private socket: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private steady: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private stopped = false;
  private current: string;
  // Bumped by every connect and drop, so that a resolve that comes back
  // late does not act after a moveTo() or close() overtook it.
  private generation = 0;

  constructor(private readonly options: ReconnectOptions) {
    this.current = options.url;
    this.connect(options.url);
  }

  /** The URL of the socket open now, or of the last one tried. */
  get url(): string {
    return this.current;
  }
  /** The open socket, if any. */
  get ws(): WebSocket | null {
    return this.socket;
  }

  /** The API names another URL (the page re-read it): go there now. */
  moveTo(url: string) {
    if (this.stopped || url === this.current) return;
    this.drop();
    this.attempt = 0;
    this.connect(url);
  }

  /** Told to go (an events socket's {"type":"moved"}): ask the API and reconnect. */
  reconnect() {
    if (this.stopped) return;
    this.drop();
    this.schedule();
  }

  close() {
    this.stopped = true;
    this.drop();
  }

  private drop() {
    clearTimeout(this.timer);
    clearTimeout(this.steady);
    this.generation++;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onclose = socket.onmessage = socket.onerror = null;
      socket.close();
    }
  }

  private connect(url: string) {
    this.current = url;
    this.generation++;
    const socket = new WebSocket(url);
    this.options.setup(socket);
    const worked = () => {
      clearTimeout(this.steady);
      this.attempt = 0;
    };
    socket.addEventListener("message", worked, { once: true });
    socket.onopen = () => {
      this.steady = setTimeout(worked, kSteadyMs);
      this.options.onState?.({ kind: "open" });
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearTimeout(this.steady);
      const reason = this.options.endOf?.(event) ?? null;
      if (reason !== null) {
        this.stopped = true;
        this.options.onState?.({ kind: "ended", reason });
        return;
      }
      this.schedule();
    };
    this.socket = socket;
  }

  private schedule() {
    const attempt = ++this.attempt;
    const generation = this.generation;
    this.options.onState?.({ kind: "down", attempt });
    this.timer = resolveAfterBackoff(attempt, this.options.resolve, () => !this.stopped && generation === this.generation, {
      ended: () => {
        this.stopped = true;
        this.options.onState?.({ kind: "ended", reason: null });
      },
      failed: () => this.schedule(),
      next: (url) => {
        console.info(`${this.options.name}: reconnecting to ${url} (attempt ${attempt})`);
        this.connect(url);
      },
    });
  }
}
