/**
 * The key-collision property (issue 11): no two distinct addresses give the same session key, and no
 * two distinct people (channel, account, peer) the same person key — facts, pairing approvals and
 * per-person budgets are keyed by them, so a crafted id must never merge two people. Ids are drawn
 * from the characters the escaping is about (`:`, `%`, hex digits, the word `main`) so collisions
 * would be found if the escaping let any through. FC_SEED / FUZZ_RUNS as in tests/fuzz/_fuzz.ts.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { escapeComponent, type InboundAddress, parseSessionKey, personKey, sessionKey } from "../../src/core/index.ts";
import { params, TIMEOUT } from "../fuzz/_fuzz.ts";

/** Strings made of the tricky pieces: separators, escapes (well-formed or not) and `main`. */
const piece = fc.constantFrom(":", "%", "%3A", "%25", "%6D", "3A", "a", "b", "m", "main", "ain", "A", "é", "");
const id = fc.array(piece, { maxLength: 5 }).map((a) => a.join(""));
const optional = fc.option(id, { nil: undefined });
const address = fc.record({ channel: id, account: id, peer: optional, thread: optional }) as fc.Arbitrary<InboundAddress>;
const agent = id;

const sameAddress = (a: InboundAddress, b: InboundAddress) => a.channel === b.channel && a.account === b.account && a.peer === b.peer && a.thread === b.thread;
const samePerson = (a: InboundAddress, b: InboundAddress) => a.channel === b.channel && a.account === b.account && a.peer === b.peer;

describe("session and person keys", () => {
  test(
    "two distinct (agent, address) pairs never share a session key",
    () => {
      fc.assert(
        fc.property(agent, address, agent, address, (ag1, a1, ag2, a2) => {
          if (ag1 === ag2 && sameAddress(a1, a2)) return sessionKey(ag1, a1) === sessionKey(ag2, a2);
          return sessionKey(ag1, a1) !== sessionKey(ag2, a2);
        }),
        params(2000),
      );
    },
    TIMEOUT,
  );

  test(
    "two distinct people never share a person key",
    () => {
      fc.assert(
        fc.property(address, address, (a1, a2) => {
          const k1 = personKey(a1.channel, a1.account, a1.peer);
          const k2 = personKey(a2.channel, a2.account, a2.peer);
          return samePerson(a1, a2) ? k1 === k2 : k1 !== k2;
        }),
        params(2000),
      );
    },
    TIMEOUT,
  );

  test(
    "a session key parses back to exactly the address that built it",
    () => {
      fc.assert(
        fc.property(agent, address, (ag, a) => {
          const parts = parseSessionKey(sessionKey(ag, a));
          expect(parts).toEqual({ agent: ag, channel: a.channel, account: a.account, peer: a.peer ?? null, thread: a.thread ?? null });
        }),
        params(1000),
      );
    },
    TIMEOUT,
  );

  test("the crafted ids of the review are told apart", () => {
    // account "a:b" + peer "c" vs account "a" + peer "b:c"; a peer named main vs no peer.
    expect(personKey("tg", "a:b", "c")).not.toBe(personKey("tg", "a", "b:c"));
    expect(personKey("tg", "a", "main")).not.toBe(personKey("tg", "a", undefined));
    expect(sessionKey("main", { channel: "tg", account: "a", peer: "main" })).not.toBe(sessionKey("main", { channel: "tg", account: "a" }));
    // The person key is the session key without its agent (and thread): one escaping for both.
    expect(sessionKey("x", { channel: "t:g", account: "a%", peer: "p" })).toBe(`x:${personKey("t:g", "a%", "p")}`);
    expect(escapeComponent("a:b%c")).toBe("a%3Ab%25c");
  });
});
