// whatsapp: WhatsApp Business Cloud API (wire-formats B3). The host has already checked
// X-Hub-Signature-256 (and answers the GET verification handshake itself, with the host-held
// verify token). Inbound payloads are batched: entry[] → changes[] → value.messages[]; delivery
// statuses are ignored. Replies go to the Graph API with the access token filled in by the host.
import { apiBase, describeChannel, inboundMessage, messages, noRecipient, pieces, readIncoming, readOutgoing, unreadable } from "../sdk/channel";
import { JsonKind, JsonObject, outboundRequest, sendRequests } from "../sdk";
export { abort } from "../sdk";

const LIMIT = 4096;

export function describe(): i32 {
  return describeChannel("whatsapp", "WhatsApp Business Cloud API webhooks in, Graph API messages out.", "meta-hmac-sha256", "http", ["graph.facebook.com"], ["access_token"]);
}

export function parse_incoming(): i32 {
  const req = readIncoming();
  if (req === null) return unreadable("a webhook request");
  const body = req.object();
  if (body === null) return unreadable("a WhatsApp webhook");
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
          const msg = inboundMessage(m.getString("id"), phoneId, group.length > 0 ? group : m.getString("from"), body).str("sender", m.getString("from"));
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
  return messages(out);
}

export function format_outgoing(): i32 {
  const req = readOutgoing();
  if (req === null) return noRecipient();
  const url = apiBase("https://graph.facebook.com") + "/v23.0/" + req.account() + "/messages";
  const peer = req.peer();
  const parts = pieces(req.text, LIMIT);
  const requests = new Array<JsonObject>();
  for (let i = 0; i < parts.length; i++) {
    const body = new JsonObject()
      .str("messaging_product", "whatsapp")
      .str("recipient_type", isPhoneNumber(peer) ? "individual" : "group")
      .str("to", peer)
      .str("type", "text")
      .raw("text", new JsonObject().bool("preview_url", false).str("body", parts[i]).toString());
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
