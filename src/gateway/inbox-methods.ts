/**
 * Channel messages not answered yet (SPEC §5, §13): `inbox.list {channel?, state?}`, `inbox.retry {id}`
 * (re-queued with fresh attempts and delivered now; the answer is that attempt's outcome),
 * `inbox.drop {id}` (given up: never sent). Operator methods: whoever holds the gateway token.
 */
import * as v from "valibot";
import type { Inbox } from "../channels/index.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";

const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(1024));
export const InboxListParams = v.strictObject({
  channel: v.optional(v.pipe(v.string(), v.minLength(1))),
  state: v.optional(v.picklist(["pending", "dead"])),
});
export const InboxIdParams = v.strictObject({ id: Id });

export function inboxMethods(inbox: Inbox): Map<string, Method<never>> {
  return new Map([
    [
      "inbox.list",
      defineMethod({
        params: InboxListParams,
        operator: true,
        handle: async (p) => ({ messages: await inbox.list(p) }),
      }),
    ],
    ["inbox.retry", defineMethod({ params: InboxIdParams, operator: true, handle: (p) => inbox.retry(p.id) })],
    [
      "inbox.drop",
      defineMethod({
        params: InboxIdParams,
        operator: true,
        handle: async (p) => ({ dropped: await inbox.drop(p.id) }),
      }),
    ],
  ]);
}
