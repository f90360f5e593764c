// whatsapp: WhatsApp Business Cloud API (wire-formats B3). The host has already checked
// X-Hub-Signature-256 (and answers the GET verification handshake itself, with the host-held
// verify token). Inbound payloads are batched: entry[] → changes[] → value.messages[]; delivery
// statuses are ignored. Replies go to the Graph API with the access token filled in by the host.
import { Config } from "@extism/as-pdk";
import { fail, input, JsonKind, JsonObject, JsonParser, outboundRequest, output, sendRequests } from "../sdk";
export { abort } from "../sdk";

const LIMIT = 4096;

export function describe(): i32 {
  output(
    '{"abi":1,"name":"whatsapp","version":"1.0.0","kind":"channel","description":"WhatsApp Business Cloud API webhooks in, Graph API messages out.",' +
      '"channel":{"id":"whatsapp","verify":"meta-hmac-sha256","send_result":"http"},"wants":{"hosts":["graph.facebook.com"],"paths":[],"secrets":["access_token"]}}',
  );
  return 0;
}

export function parse_incoming(): i32 {
  const req = new JsonParser(input()).parse();
  if (req === null) return fail("input must be {headers, body, query}");
  const body = new JsonParser(req.getString("body")).parse();
  if (body === null || body.kind != JsonKind.Object) return fail("the body is not a WhatsApp webhook");
  const out = new Array<string>();
  const entries = body.get("entry");
  if (entries !== null && entries.kind == JsonKind.Array) {
    for (let e = 0; e < entries.items.length; e++) {
      const changes = entries.items[e].get("changes");
      if (changes === null || changes.kind != JsonKind.Array) continue;
      for (let c = 0; c < changes.items.length; c++) {
        const value = changes.items[c].get("value");
        if (value === null) continue;
        const meta = value.get("metadata");
        const phoneId = meta === null ? "" : meta.getString("phone_number_id");
        const messages = value.get("messages");
        if (messages === null || messages.kind != JsonKind.Array) continue;
        for (let i = 0; i < messages.items.length; i++) {
          const m = messages.items[i];
          if (m.getString("type") != "text") continue;
          const text = m.get("text");
          const body = text === null ? "" : text.getString("body");
          const group = m.getString("group_id");
          // A group message is answered in the group (its id is the peer), from its sender's memory.
          const msg = new JsonObject()
            .str("id", m.getString("id"))
            .str("account", phoneId)
            .str("peer", group.length > 0 ? group : m.getString("from"))
            .str("sender", m.getString("from"))
            .str("text", body);
          if (group.length > 0) {
            msg.bool("group", true);
            // Addressed to the business: a reply to one of its messages, or "@<its number>" in the text.
            const context = m.get("context");
            const own = meta === null ? "" : meta.getString("display_phone_number");
            if ((context !== null && own.length > 0 && context.getString("from") == own) || (own.length > 0 && body.includes("@" + own))) msg.bool("mentioned", true);
          }
          out.push(msg.toString());
        }
      }
    }
  }
  output('{"messages":[' + out.join(",") + "]}");
  return 0;
}

export function format_outgoing(): i32 {
  const req = new JsonParser(input()).parse();
  if (req === null) return fail("bad input");
  const to = req.get("to");
  if (to === null) return fail("no recipient");
  const base = Config.get("api_base");
  const url = (base === null ? "https://graph.facebook.com" : base) + "/v23.0/" + to.getString("account") + "/messages";
  const text = req.getString("text");
  const requests = new Array<JsonObject>();
  for (let i = 0; i < text.length || i == 0; i += LIMIT) {
    const body = new JsonObject()
      .str("messaging_product", "whatsapp")
      .str("recipient_type", isPhoneNumber(to.getString("peer")) ? "individual" : "group")
      .str("to", to.getString("peer"))
      .str("type", "text")
      .raw("text", new JsonObject().bool("preview_url", false).str("body", text.substring(i, i + LIMIT)).toString());
    requests.push(outboundRequest("POST", url, '{"content-type":"application/json","authorization":"Bearer {{secret:access_token}}"}', body.toString()));
  }
  return sendRequests(requests);
}

/** A phone number (digits only) is one person; anything else is a group id. */
function isPhoneNumber(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}
