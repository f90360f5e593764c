/**
 * The web control page (SPEC §4 `GET /`): chat with streaming, sessions, approvals, people (pairing), plugins and usage, over
 * the same WebSocket protocol as every client. Built into the binary as plain strings; the script
 * is served from the gateway's own origin so the page runs under a strict Content-Security-Policy.
 * The script is in script.ts.
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
  li.session { cursor: pointer; color: #0058b0; } li.session.selected { font-weight: 600; } #auth { display: none; gap: 8px; margin-bottom: 8px; }
  #status.down { color: #b00020; } .pending { opacity: 0.6; } .note { font-size: 12px; color: #666; }
  #warning { display: none; background: #fff4e5; border: 1px solid #f0b35a; border-radius: 8px; padding: 8px 12px; margin-bottom: 8px; font-size: 13px; }
  #warning code { background: #fbe3c2; padding: 0 4px; border-radius: 4px; }
  #view { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; font-size: 13px; margin-bottom: 8px; }
  #agent { color: #666; } #back { padding: 2px 10px; }
  #people h3 { font-size: 12px; margin: 8px 0 2px; color: #444; } #people li { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; }
  #people li button { padding: 1px 8px; font-size: 12px; } #people code { background: #eef; padding: 0 4px; border-radius: 4px; }
  #people-error { color: #b00020; font-size: 12px; }
  .approval { background: #fff4e5; border-radius: 6px; padding: 4px 6px; } .approval button, #approvals button { padding: 1px 8px; font-size: 12px; margin-left: 4px; }
</style>
</head>
<body>
<main>
  <h1>exoclaw</h1>
  <div id="status" role="status">connecting…</div>
  <form id="auth"><input id="token" type="password" placeholder="gateway token" autocomplete="off"><button>Connect</button></form>
  <div id="warning" role="alert"></div>
  <div id="view"><strong id="viewing">your chat</strong><span id="agent"></span><button id="back" type="button" hidden>back to chat</button></div>
  <div id="log" aria-live="polite"></div>
  <form id="chat"><input id="message" placeholder="Message" autocomplete="off"><button id="send">Send</button></form>
</main>
<aside>
  <h2>Sessions</h2><ul id="sessions"></ul>
  <h2>Approvals</h2><ul id="approvals"></ul>
  <h2>People</h2><div id="people"></div><div id="people-error" role="alert"></div>
  <h2>Plugins</h2><ul id="plugins"></ul>
  <h2>Usage today</h2><ul id="usage"></ul>
</aside>
<script src="/app.js"></script>
</body>
</html>
`;

export { PAGE_JS } from "./script.ts";

/** Same-origin only: no inline script, no third-party anything. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
