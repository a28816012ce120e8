// The WebSocket link to the gateway's /ws: binary frames are bars, text
// frames are the JSON replies to commands (src/gateway/protocol.rs). After a
// drop it reconnects with capped exponential backoff, so a gateway restart
// or a network blip never needs a page reload; the page re-sends its
// subscription from `onOpen`, because a new connection starts with none.

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 10_000;

/**
 * Delay before reconnect attempt `attempt` (0 first): 0.5 s, 1 s, 2 s, …
 * capped at 10 s, each ±20 % at random so that the pages of many users do
 * not all reconnect in the same instant after a gateway restart.
 */
export function backoffMs(attempt, random = Math.random) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt, 30));
  return Math.round(Math.min(BACKOFF_MAX_MS, base * (0.8 + 0.4 * random())));
}

export class Feed {
  /**
   * `handlers`: onFrame(ArrayBuffer), onReply(object), onOpen(),
   * onChange() (connection state changed).
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    /** "connecting" | "open" | "closed" (waiting to reconnect). */
    this.state = "connecting";
    /** Failed attempts since the last connection that delivered a message. */
    this.attempt = 0;
    /** Unix ms of the next reconnect attempt while closed. */
    this.retryAt = 0;
    this.reconnects = 0;
    /** Why the last connection ended, for the status line. */
    this.lastClose = "";
  }

  start() {
    this.#connect();
  }

  /** Sends a command; false when not connected (onOpen re-sends state). */
  send(text) {
    if (this.ws === null || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(text);
    return true;
  }

  /** Drops the connection as a network failure would (test hook): it reconnects by itself. */
  drop() {
    this.ws?.close(4000, "dropped by the page");
  }

  #connect() {
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.#setState("connecting");
    ws.onopen = () => {
      this.#setState("open");
      this.handlers.onOpen();
    };
    ws.onmessage = (event) => {
      // The link works end to end, so the next drop backs off from the start
      // again. (Reset here rather than on open: a gateway that accepts and
      // then closes at once must still be backed off from.)
      this.attempt = 0;
      if (typeof event.data === "string") this.#reply(event.data);
      else this.handlers.onFrame(event.data);
    };
    // An error event is always followed by close; close alone decides.
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.lastClose = `code ${event.code}${event.reason ? `: ${event.reason}` : ""}`;
      const delay = backoffMs(this.attempt++);
      this.retryAt = Date.now() + delay;
      this.#setState("closed");
      setTimeout(() => {
        this.reconnects += 1;
        this.#connect();
      }, delay);
    };
  }

  #reply(text) {
    let reply;
    try {
      reply = JSON.parse(text);
    } catch {
      reply = { type: "error", error: `unreadable reply: ${text.slice(0, 80)}` };
    }
    this.handlers.onReply(reply);
  }

  #setState(state) {
    this.state = state;
    this.handlers.onChange();
  }
}
