/** NATS-style subjects: `.`-separated tokens; `*` matches one token, `>` the rest. */

/** A subject token from arbitrary text: `.`, `*`, `>`, `%` and whitespace percent-encoded. */
export function subjectToken(s: string): string {
  const t = s.replace(/[%.*>\s]/gu, (c) => "%" + c.codePointAt(0)!.toString(16).toUpperCase().padStart(2, "0"));
  return t === "" ? "_" : t;
}

/** The subject of an inbound message (SPEC §12): `exoclaw.<channel>.<account>.<peer>`. */
export function inboundSubject(channel: string, account: string, peer: string | null): string {
  return ["exoclaw", channel, account, peer ?? "main"].map(subjectToken).join(".");
}

export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
