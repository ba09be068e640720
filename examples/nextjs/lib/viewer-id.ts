// One tab is one viewer (contract: `?viewer=ID` on every watch URL). The id
// lives in sessionStorage: it stays through reloads and page changes in this
// tab, and a second tab gets its own. Switching the player between HLS, the
// WebSocket frames and WHEP keeps the id, so the worker counts the tab once.
const kKey = "mirage-viewer";

export function viewerId(): string {
  let id = sessionStorage.getItem(kKey);
  if (!id) {
    id = Math.random().toString(36).slice(2) + Date.now().toString(36);
    sessionStorage.setItem(kKey, id);
  }
  return id;
}
