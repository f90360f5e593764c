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
const address = fc.record({
  channel: id,
  account: id,
  peer: optional,
  thread: optional,
}) as fc.Arbitrary<InboundAddress>;
const agent = id;

/**
 * Pairs of addresses that a careless key format would merge: the same characters with a separator
 * moved between neighbouring components (account "u:v" + peer "w" against account "u" + peer
 * "v:w", and so on down the key), a peer named `main` against no peer, or just two random ones.
 */
const shifted = fc.tuple(id, id, id, id, id).map(
  ([c, u, v, w, t]) =>
    [
      { channel: `${c}:${u}`, account: v, peer: w, thread: t },
      { channel: c, account: `${u}:${v}`, peer: w, thread: t },
    ] as InboundAddress[],
);
const shiftedPeer = fc.tuple(id, id, id, id, optional).map(
  ([c, a, v, w, t]) =>
    [
      { channel: c, account: `${a}:${v}`, peer: w, ...(t !== undefined && { thread: t }) },
      { channel: c, account: a, peer: `${v}:${w}`, ...(t !== undefined && { thread: t }) },
    ] as InboundAddress[],
);
const peerThread = fc.tuple(id, id, id, id).map(
  ([c, a, p, t]) =>
    [
      { channel: c, account: a, peer: `${p}:${t}` },
      { channel: c, account: a, peer: p, thread: t },
    ] as InboundAddress[],
);
const mainPeer = fc.tuple(id, id, optional).map(
  ([c, a, t]) =>
    [
      { channel: c, account: a, peer: "main", ...(t !== undefined && { thread: t }) },
      { channel: c, account: a, ...(t !== undefined && { thread: t }) },
    ] as InboundAddress[],
);
const pair = fc.oneof(shifted, shiftedPeer, peerThread, mainPeer, fc.tuple(address, address));

const sameAddress = (a: InboundAddress, b: InboundAddress) =>
  a.channel === b.channel && a.account === b.account && a.peer === b.peer && a.thread === b.thread;
const samePerson = (a: InboundAddress, b: InboundAddress) =>
  a.channel === b.channel && a.account === b.account && a.peer === b.peer;

describe("session and person keys", () => {
  test(
    "two distinct (agent, address) pairs never share a session key",
    () => {
      fc.assert(
        fc.property(agent, pair, (ag, [a1, a2]) => {
          if (sameAddress(a1!, a2!)) return sessionKey(ag, a1!) === sessionKey(ag, a2!);
          return sessionKey(ag, a1!) !== sessionKey(ag, a2!);
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
        fc.property(pair, ([a1, a2]) => {
          const k1 = personKey(a1!.channel, a1!.account, a1!.peer);
          const k2 = personKey(a2!.channel, a2!.account, a2!.peer);
          return samePerson(a1!, a2!) ? k1 === k2 : k1 !== k2;
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
          expect(parts).toEqual({
            agent: ag,
            channel: a.channel,
            account: a.account,
            peer: a.peer ?? null,
            thread: a.thread ?? null,
          });
        }),
        params(1000),
      );
    },
    TIMEOUT,
  );

  test(
    "a person key is the session key's channel, account and peer, escaped the same way (so it is as unambiguous)",
    () => {
      fc.assert(
        fc.property(agent, address, (ag, a) => {
          const { thread: _thread, ...person } = a;
          expect(sessionKey(ag, person)).toBe(`${escapeComponent(ag)}:${personKey(a.channel, a.account, a.peer)}`);
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
    expect(sessionKey("main", { channel: "tg", account: "a", peer: "main" })).not.toBe(
      sessionKey("main", { channel: "tg", account: "a" }),
    );
    // The person key is the session key without its agent (and thread): one escaping for both.
    expect(sessionKey("x", { channel: "t:g", account: "a%", peer: "p" })).toBe(`x:${personKey("t:g", "a%", "p")}`);
    expect(escapeComponent("a:b%c")).toBe("a%3Ab%25c");
  });
});
