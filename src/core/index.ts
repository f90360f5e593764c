/**
 * The core vocabulary (the lowest layer, importing nothing): the message model and the address with
 * its session and person keys. Every other layer may use it; it uses none.
 */
export {
  escapeComponent,
  type InboundAddress,
  parseSessionKey,
  personKey,
  type SessionAddress,
  type SessionKeyParts,
  sessionKey,
} from "./address.ts";
export type { MessagePart, NewMessage, Role, StoredMessage } from "./message.ts";
