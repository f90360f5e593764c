/**
 * The web control page's script (served as /app.js). What it promises a user:
 * - The chat box always sends to the conversation on screen. "Your chat" is the page's own session
 *   (channel `web`, peer `web`, routed by the bindings). Selecting a session of a protocol client
 *   (channel `web`, `ws` — `exoclaw chat` — or `openai`) continues that session: chat.send with its
 *   own agent, channel, account, peer and thread builds exactly its key. A chat platform's session
 *   (telegram, slack…) is shown read-only: a reply made here would never reach that person, and the
 *   words would enter their history and memory as theirs.
 * - The agent and model that answer are shown (from `status`), with a warning and the fix when the
 *   agent has no API key.
 * - "People" lists, per channel, the strangers waiting with a pairing code and the people let in
 *   (pairing.list), with Approve and Revoke (pairing.approve / pairing.revoke). It is read again
 *   every few seconds while the page is shown, so a stranger who just wrote appears without a reload;
 *   it is redrawn only when something changed.
 * - A tool call that waits for the operator (chat.event `approval`) is shown in the chat with Allow and
 *   Deny (approval.resolve), then with what was decided; the "Approvals" panel lists every call
 *   waiting (approval.list, read again every few seconds) — a channel's turns too — with the same
 *   buttons; a session's history shows the decisions stored with its tool results.
 * - When the socket closes the page says "disconnected, reconnecting…" and retries with backoff.
 *   A message sent while disconnected is queued (shown greyed, marked as waiting) and sent, in order,
 *   once the gateway is back; one whose answer was cut off by the disconnect is reported as such and
 *   put back in the input box.
 * Plain JavaScript in a string: no build step, no backticks or template placeholders inside.
 */
export const PAGE_JS = `"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const LOCAL_CHANNELS = ["web", "ws", "openai"];
  const OWN = { channel: "web", account: "browser", peer: "web" };
  let ws = null, ready = false, nextId = 1, token = "", retryMs = 500, retryTimer = null, current = null;
  let agents = [], ownSession = null, ownAgent = null, view = null;
  const pending = new Map();
  const turnView = new Map();
  const queue = [];
  const viewId = () => (view ? view.key : "own");
  const sendable = (s) => LOCAL_CHANNELS.includes(s.channel);
  const line = (cls, text) => { const d = document.createElement("div"); d.className = "msg " + cls; d.textContent = text; log.appendChild(d); log.scrollTop = log.scrollHeight; return d; };
  const request = (method, params) => {
    const id = nextId++;
    const done = new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== 1) return reject(new Error("not connected to the gateway"));
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
    return { id, done };
  };
  const call = (method, params) => request(method, params).done;
  const item = (list, text, cls, onclick) => { const li = document.createElement("li"); li.textContent = text; if (cls) li.className = cls; if (onclick) li.onclick = onclick; list.appendChild(li); return li; };

  function setStatus(text, down) { $("status").textContent = text; $("status").className = down ? "down" : ""; }

  function renderView() {
    const agentId = view ? view.agent : ownAgent || (agents.find((a) => a.default) || {}).id;
    const a = agents.find((x) => x.id === agentId);
    $("viewing").textContent = view ? "session " + view.key : "your chat" + (ownSession ? " (" + ownSession + ")" : "");
    $("agent").textContent = a ? "answered by " + a.id + " — " + a.provider + " " + a.model : agentId ? "answered by " + agentId : "";
    $("back").hidden = !view;
    const readOnly = !!view && !sendable(view);
    $("message").disabled = readOnly; $("send").disabled = readOnly;
    $("message").placeholder = readOnly ? "read-only: a " + view.channel + " conversation — a reply from here would not reach that person" : view ? "Message to " + view.key : "Message";
    const w = $("warning");
    w.replaceChildren();
    if (a && a.key === "missing") {
      const code = (t) => { const c = document.createElement("code"); c.textContent = t; return c; };
      w.append("No API key is configured for agent " + a.id + " (" + a.provider + "): every message to it will fail. Fix: run ", code("exoclaw onboard"), " (or ", code("exoclaw secret set " + a.provider), ") on the gateway's machine.");
      w.style.display = "block";
    } else w.style.display = "none";
    for (const li of $("sessions").children) li.classList.toggle("selected", li.dataset.key === (view ? view.key : ownSession));
  }

  async function refresh() {
    const [sessions, plugins, usage, status] = await Promise.all([call("session.list", { limit: 50 }), call("plugin.list"), call("usage.get", {}), call("status")]);
    agents = status.agents || [];
    $("sessions").replaceChildren(); $("plugins").replaceChildren(); $("usage").replaceChildren();
    for (const s of sessions.sessions) item($("sessions"), s.key + " (" + s.message_count + ")", "session", () => select(s).catch((e) => line("error", e.message))).dataset.key = s.key;
    if (!sessions.sessions.length) item($("sessions"), "none yet");
    for (const p of plugins.plugins) item($("plugins"), p.name + " — " + p.state + (p.tools && p.tools.length ? ": " + p.tools.join(", ") : p.kind ? " (" + p.kind + ")" : ""));
    if (!plugins.plugins.length) item($("plugins"), "none");
    const t = usage.today;
    item($("usage"), t.calls + " calls, " + t.input_tokens + " in / " + t.output_tokens + " out, $" + t.cost_usd.toFixed(4));
    renderView();
    await refreshPeople(false).catch((err) => peopleError(err.message));
    await refreshApprovals(true).catch(() => {});
  }

  let peopleShown = null, peopleTimer = null;
  const ago = (ms) => { const m = Math.round(ms / 60000); return m < 1 ? "just now" : m < 60 ? m + " min ago" : Math.round(m / 60) + " h ago"; };
  const peopleError = (text) => { $("people-error").textContent = text; };

  function renderPeople(list) {
    const box = $("people");
    box.replaceChildren();
    if (!list.length) { const p = document.createElement("p"); p.className = "note"; p.textContent = "nobody yet — a stranger who writes to a channel appears here with their pairing code"; box.appendChild(p); return; }
    const byChannel = new Map();
    for (const p of list) { if (!byChannel.has(p.channel)) byChannel.set(p.channel, []); byChannel.get(p.channel).push(p); }
    for (const [channel, people] of byChannel) {
      const h = document.createElement("h3"); h.textContent = channel; box.appendChild(h);
      const ul = document.createElement("ul"); box.appendChild(ul);
      // Waiting strangers first: they are what the operator comes here for.
      people.sort((a, b) => (a.status === b.status ? 0 : a.status === "pending" ? -1 : 1));
      for (const p of people) {
        const li = document.createElement("li"); li.dataset.person = p.person; li.dataset.status = p.status;
        const who = document.createElement("span"); who.textContent = p.person; li.appendChild(who);
        const act = document.createElement("button"); act.type = "button";
        if (p.status === "pending") {
          const code = document.createElement("code"); code.textContent = p.code || ""; li.append(" waiting, code ", code);
          const mins = Math.max(0, Math.round(((p.expires_at || 0) - Date.now()) / 60000));
          const note = document.createElement("span"); note.className = "note"; note.textContent = "expires in " + mins + " min"; li.appendChild(note);
          act.textContent = "Approve"; act.onclick = () => decide("pairing.approve", { code: p.code }, act);
        } else {
          const note = document.createElement("span"); note.className = "note"; note.textContent = "approved " + ago(Date.now() - (p.approved_at || p.created_at)); li.appendChild(note);
          act.textContent = "Revoke"; act.onclick = () => decide("pairing.revoke", { person: p.person }, act);
        }
        li.appendChild(act);
        ul.appendChild(li);
      }
    }
  }

  async function decide(method, params, button) {
    button.disabled = true;
    try { await call(method, params); peopleError(""); }
    catch (err) { peopleError(err.message); }
    await refreshPeople(true).catch(() => {});
  }

  async function refreshPeople(force) {
    const r = await call("pairing.list", {});
    // Redrawn only when it changed: a button under the pointer does not vanish every few seconds.
    const shown = JSON.stringify(r.pairings);
    if (!force && shown === peopleShown) return;
    peopleShown = shown;
    renderPeople(r.pairings);
  }

  function watchPeople() {
    clearInterval(peopleTimer);
    peopleTimer = setInterval(() => {
      if (!ready || document.visibilityState !== "visible") return;
      refreshPeople(false).catch(() => {});
      refreshApprovals(false).catch(() => {});
    }, 2000);
  }

  async function showHistory(key) {
    const h = await call("chat.history", { session: key, limit: 50 });
    log.replaceChildren(); current = null;
    line("tool", "history of " + key);
    for (const m of h.messages) for (const p of m.parts) {
      if (p.type === "text") line(m.role === "user" ? "user" : "assistant", p.text);
      else if (p.type === "tool_use") line("tool", "[tool " + p.name + " " + JSON.stringify(p.input) + "]");
      else line("tool", "[result: " + p.content + "]");
    }
    for (const m of h.messages) for (const a of (m.meta && m.meta.approvals) || []) line("tool decision", "[approval: " + a.tool + " " + a.state + " by " + a.by + " — " + a.why + "]");
  }

  async function select(s) {
    view = s.key === ownSession ? null : s;
    renderView();
    await showHistory(s.key);
  }

  async function backToChat() {
    view = null; renderView();
    if (ownSession) await showHistory(ownSession).catch(() => log.replaceChildren());
    else log.replaceChildren();
    $("message").focus();
  }

  function onEvent(e) {
    // Events of a turn belong to the conversation it was sent from; another one may be on screen now.
    if (turnView.get(e.id) !== viewId()) return;
    if (e.event === "text") { if (!current) current = line("assistant", ""); current.textContent += e.data; }
    else if (e.event === "tool_use") { current = null; line("tool", "[tool " + e.data.name + " " + JSON.stringify(e.data.input) + "]"); }
    else if (e.event === "tool_result") line("tool", "[" + (e.data.is_error ? "tool error" : "result") + ": " + e.data.content + "]");
    else if (e.event === "approval") { current = null; approvalCard(e.data); }
    else if (e.event === "approval_result") settleCard(e.data.id, e.data.state, e.data.by);
    else if (e.event === "error") line("error", e.data.message);
    else if (e.event === "done") current = null;
  }

  // A tool call waiting for the operator (approval.resolve): Allow / Deny in the chat, and in the Approvals panel.
  function approvalButtons(a, box, after) {
    for (const [label, allow] of [["Allow", true], ["Deny", false]]) {
      const b = document.createElement("button"); b.type = "button"; b.textContent = label; b.dataset.approval = a.id;
      b.onclick = async () => {
        for (const x of box.querySelectorAll("button")) x.disabled = true;
        try { await call("approval.resolve", { id: a.id, allow }); }
        catch (err) { line("error", err.message); for (const x of box.querySelectorAll("button")) x.disabled = false; }
        if (after) after();
      };
      box.appendChild(b);
    }
  }
  function approvalCard(a) {
    const d = line("tool approval", "[approval needed: " + a.tool + " — " + a.why + "] " + a.input + " ");
    d.dataset.approval = a.id;
    approvalButtons(a, d, null);
  }
  function settleCard(id, state, by) {
    for (const d of log.querySelectorAll(".approval")) {
      if (d.dataset.approval !== id) continue;
      for (const b of d.querySelectorAll("button")) b.remove();
      const s = document.createElement("strong"); s.className = "decision"; s.textContent = state + " (" + by + ")"; d.appendChild(s);
    }
  }
  let approvalsShown = null;
  async function refreshApprovals(force) {
    const r = await call("approval.list", {});
    const shown = JSON.stringify(r.approvals.map((a) => a.id));
    if (!force && shown === approvalsShown) return;
    approvalsShown = shown;
    const ul = $("approvals"); ul.replaceChildren();
    if (!r.approvals.length) { item(ul, "no tool call is waiting"); return; }
    for (const a of r.approvals) {
      const li = item(ul, a.tool + " — " + a.why + " (" + a.session + "): " + a.input + " ");
      li.dataset.approval = a.id;
      approvalButtons(a, li, () => refreshApprovals(true).catch(() => {}));
    }
  }

  async function deliver(msg) {
    const t = msg.target;
    const params = t
      ? Object.assign({ content: msg.content, agent: t.agent, channel: t.channel, account: t.account }, t.peer === null ? {} : { peer: t.peer }, t.thread === null ? {} : { thread: t.thread })
      : Object.assign({ content: msg.content }, OWN);
    const from = t ? t.key : "own";
    const r = request("chat.send", params);
    turnView.set(r.id, from);
    current = null;
    try {
      const out = await r.done;
      if (!t) { ownSession = out.session; ownAgent = out.agent; }
    } catch (err) {
      if (viewId() === from) line("error", err.lost ? "no answer: the connection to the gateway was lost (your message is back in the input box)" : err.message);
      if (err.lost && !$("message").value) $("message").value = msg.content;
    } finally { turnView.delete(r.id); }
    current = null;
    if (ready) refresh().catch(() => {});
  }

  async function flushQueue() {
    while (ready && queue.length) {
      const msg = queue.shift();
      msg.el.classList.remove("pending");
      if (msg.note) msg.note.remove();
      await deliver(msg);
    }
  }

  function scheduleReconnect() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => open(), retryMs);
    retryMs = Math.min(retryMs * 2, 8000);
  }

  function open() {
    const sock = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws = sock;
    sock.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.method === "chat.event") return onEvent(m.params);
      const p = pending.get(m.id); if (!p) return; pending.delete(m.id);
      m.error ? p.reject(new Error(m.error.message)) : p.resolve(m.result);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ready = false;
      for (const p of pending.values()) p.reject(Object.assign(new Error("the connection to the gateway was lost"), { lost: true }));
      pending.clear();
      if (ev.code === 4001) {
        setStatus("this gateway needs a token", true);
        sessionStorage.removeItem("exoclaw-token"); $("auth").style.display = "flex";
        return;
      }
      setStatus("disconnected, reconnecting…", true);
      scheduleReconnect();
    };
    sock.onopen = async () => {
      try {
        const hello = await call("connect", token ? { token, client: { name: "web", version: "1" } } : { client: { name: "web", version: "1" } });
        if (token) sessionStorage.setItem("exoclaw-token", token);
        $("auth").style.display = "none";
        ready = true; retryMs = 500;
        setStatus("connected to " + hello.server.name + " " + hello.server.version, false);
        await refresh();
        watchPeople();
        await flushQueue();
      } catch (err) { if (ws === sock && sock.readyState === 1) setStatus(err.message, true); }
    };
  }

  $("auth").onsubmit = (e) => { e.preventDefault(); token = $("token").value; clearTimeout(retryTimer); open(); };
  $("back").onclick = () => { backToChat().catch(() => {}); };
  $("chat").onsubmit = (e) => {
    e.preventDefault();
    if (view && !sendable(view)) return;
    const content = $("message").value.trim(); if (!content) return;
    $("message").value = "";
    const msg = { content, target: view, el: line("user", content) };
    current = null;
    if (!ready) {
      msg.el.classList.add("pending");
      msg.note = document.createElement("span");
      msg.note.className = "note";
      msg.note.textContent = "  (waiting for the gateway — sent when reconnected)";
      msg.el.appendChild(msg.note);
      queue.push(msg);
      return;
    }
    deliver(msg);
  };
  token = sessionStorage.getItem("exoclaw-token") || "";
  open();
})();
`;
