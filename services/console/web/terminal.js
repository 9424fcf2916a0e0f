// The browser side of the web console: xterm.js (loaded before this script, from the npm
// package) bridged to the console service over a WebSocket. Binary frames both ways
// carry raw terminal bytes (output in, keys out); text frames are server notices.
const status = document.getElementById("status");
const term = new globalThis.Terminal({ cols: 100, rows: 30, scrollback: 5000 });
term.open(document.getElementById("term"));
// Tests and tools read the screen through this handle.
globalThis.vmeshTerm = term;

const encoder = new TextEncoder();
const url = new URL("ws", location.href);
url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
const ws = new WebSocket(url);
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  status.textContent = "connected";
  term.focus();
};
ws.onclose = () => status.textContent = "disconnected";
ws.onmessage = (ev) => {
  if (typeof ev.data === "string") {
    try {
      const msg = JSON.parse(ev.data);
      if (msg.vm) document.getElementById("vm").textContent = msg.vm;
    } catch { /* not for us */ }
    return;
  }
  term.write(new Uint8Array(ev.data));
};
term.onData((data) => {
  if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
});
term.onBinary((data) => {
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
});
