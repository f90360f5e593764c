/**
 * The web control page (SPEC §4 `GET /`): chat with streaming, sessions, plugins and usage, over
 * the same WebSocket protocol as every client. Built into the binary as plain strings; the script
 * is served from the gateway's own origin so the page runs under a strict Content-Security-Policy.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>exoclaw</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d1d1f; background: #f5f5f7; }
  body { margin: 0; display: grid; grid-template-columns: 1fr 320px; height: 100vh; }
  main { display: flex; flex-direction: column; padding: 16px; min-width: 0; }
  aside { border-left: 1px solid #ddd; padding: 16px; overflow: auto; background: #fff; }
  h1 { font-size: 18px; margin: 0 0 12px; } h2 { font-size: 14px; margin: 16px 0 6px; text-transform: uppercase; color: #666; }
  #log { flex: 1; overflow: auto; background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 12px; }
  .msg { margin: 6px 0; white-space: pre-wrap; } .user { color: #0058b0; } .assistant { color: #1d1d1f; }
  .tool { color: #7a5a00; font-family: ui-monospace, monospace; font-size: 12px; } .error { color: #b00020; }
  form { display: flex; gap: 8px; margin-top: 12px; } input { flex: 1; padding: 8px; font-size: 14px; }
  button { padding: 8px 14px; } #status { font-size: 12px; color: #666; margin-bottom: 8px; }
  ul { list-style: none; padding: 0; margin: 0; font-size: 13px; } li { padding: 3px 0; cursor: default; word-break: break-all; }
  li.session { cursor: pointer; color: #0058b0; } #auth { display: none; gap: 8px; margin-bottom: 8px; }
</style>
</head>
<body>
<main>
  <h1>exoclaw</h1>
  <div id="status">connecting…</div>
  <form id="auth"><input id="token" type="password" placeholder="gateway token" autocomplete="off"><button>Connect</button></form>
  <div id="log" aria-live="polite"></div>
  <form id="chat"><input id="message" placeholder="Message" autocomplete="off"><button id="send">Send</button></form>
</main>
<aside>
  <h2>Sessions</h2><ul id="sessions"></ul>
  <h2>Plugins</h2><ul id="plugins"></ul>
  <h2>Usage today</h2><ul id="usage"></ul>
</aside>
<script src="/app.js"></script>
</body>
</html>
`;

export const PAGE_JS = `"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  let ws, nextId = 1, peer = "web", current = null;
  const pending = new Map();
  const line = (cls, text) => { const d = document.createElement("div"); d.className = "msg " + cls; d.textContent = text; log.appendChild(d); log.scrollTop = log.scrollHeight; return d; };
  const call = (method, params) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  });
  const item = (list, text, cls, onclick) => { const li = document.createElement("li"); li.textContent = text; if (cls) li.className = cls; if (onclick) li.onclick = onclick; list.appendChild(li); };
  async function refresh() {
    const [sessions, plugins, usage] = await Promise.all([call("session.list", { limit: 50 }), call("plugin.list"), call("usage.get", {})]);
    $("sessions").replaceChildren(); $("plugins").replaceChildren(); $("usage").replaceChildren();
    for (const s of sessions.sessions) item($("sessions"), s.key + " (" + s.message_count + ")", "session", () => showHistory(s.key));
    if (!sessions.sessions.length) item($("sessions"), "none yet");
    for (const p of plugins.plugins) item($("plugins"), p.name + " — " + p.state + (p.tools && p.tools.length ? ": " + p.tools.join(", ") : p.kind ? " (" + p.kind + ")" : ""));
    if (!plugins.plugins.length) item($("plugins"), "none");
    const t = usage.today;
    item($("usage"), t.calls + " calls, " + t.input_tokens + " in / " + t.output_tokens + " out, $" + t.cost_usd.toFixed(4));
  }
  async function showHistory(key) {
    const h = await call("chat.history", { session: key, limit: 50 });
    log.replaceChildren();
    line("tool", "history of " + key);
    for (const m of h.messages) for (const p of m.parts) {
      if (p.type === "text") line(m.role === "user" ? "user" : "assistant", p.text);
      else if (p.type === "tool_use") line("tool", "[tool " + p.name + " " + JSON.stringify(p.input) + "]");
      else line("tool", "[result: " + p.content + "]");
    }
  }
  function onEvent(e) {
    if (e.event === "text") { if (!current) current = line("assistant", ""); current.textContent += e.data; }
    else if (e.event === "tool_use") { current = null; line("tool", "[tool " + e.data.name + " " + JSON.stringify(e.data.input) + "]"); }
    else if (e.event === "tool_result") line("tool", "[" + (e.data.is_error ? "tool error" : "result") + ": " + e.data.content + "]");
    else if (e.event === "error") line("error", e.data.message);
    else if (e.event === "done") current = null;
  }
  function connect(token) {
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.method === "chat.event") return onEvent(m.params);
      const p = pending.get(m.id); if (!p) return; pending.delete(m.id);
      m.error ? p.reject(new Error(m.error.message)) : p.resolve(m.result);
    };
    ws.onclose = (ev) => {
      $("status").textContent = ev.code === 4001 ? "this gateway needs a token" : "disconnected";
      if (ev.code === 4001) { sessionStorage.removeItem("exoclaw-token"); $("auth").style.display = "flex"; }
    };
    ws.onopen = async () => {
      try {
        const hello = await call("connect", token ? { token, client: { name: "web", version: "1" } } : { client: { name: "web", version: "1" } });
        if (token) sessionStorage.setItem("exoclaw-token", token);
        $("auth").style.display = "none";
        $("status").textContent = "connected to " + hello.server.name + " " + hello.server.version;
        await refresh();
      } catch (err) { $("status").textContent = err.message; }
    };
  }
  $("auth").onsubmit = (e) => { e.preventDefault(); connect($("token").value); };
  $("chat").onsubmit = async (e) => {
    e.preventDefault();
    const content = $("message").value.trim(); if (!content) return;
    $("message").value = ""; line("user", content); current = null;
    try { await call("chat.send", { content, channel: "web", account: "browser", peer }); } catch (err) { line("error", err.message); }
    current = null; refresh().catch(() => {});
  };
  connect(sessionStorage.getItem("exoclaw-token") || "");
})();
`;

/** Same-origin only: no inline script, no third-party anything. */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
