/**
 * Who may talk on channels (SPEC §5, §13): `pairing.list`, `pairing.approve {code}`,
 * `pairing.revoke {person}`. Operator methods: whoever holds the gateway token decides who is let in.
 */
import * as v from "valibot";
import type { Pairings } from "../channels/index.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";

export const PairingListParams = v.strictObject({ channel: v.optional(v.pipe(v.string(), v.minLength(1))) });
export const PairingApproveParams = v.strictObject({ code: v.pipe(v.string(), v.minLength(1), v.maxLength(64)) });
export const PairingRevokeParams = v.strictObject({ person: v.pipe(v.string(), v.minLength(1), v.maxLength(1024)) });

export function pairingMethods(pairings: Pairings): Map<string, Method<never>> {
  return new Map([
    [
      "pairing.list",
      defineMethod({
        params: PairingListParams,
        operator: true,
        handle: async (p) => ({ pairings: await pairings.list(p.channel) }),
      }),
    ],
    [
      "pairing.approve",
      defineMethod({ params: PairingApproveParams, operator: true, handle: (p) => pairings.approve(p.code) }),
    ],
    [
      "pairing.revoke",
      defineMethod({ params: PairingRevokeParams, operator: true, handle: (p) => pairings.revoke(p.person) }),
    ],
  ]);
}
