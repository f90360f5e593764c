import { describe, expect, test } from "bun:test";
import {
  bearerToken,
  createAuthenticator,
  refusalOf,
  createFailureLimiter,
  limiterKey,
  createTokenCheck,
  type ExposurePolicy,
  hostOf,
  hostAccess,
  isHostAllowed,
  isLoopback,
  isOriginAllowed,
} from "../../src/auth/index.ts";

describe("isLoopback", () => {
  const yes = [
    "localhost",
    "LOCALHOST",
    "app.localhost",
    "::1",
    "[::1]",
    "127.0.0.1",
    "127.1.2.3",
    "127.255.255.255",
    "::ffff:127.0.0.1",
    "0:0:0:0:0:0:0:1",
  ];
  const no = [
    "0.0.0.0",
    "::",
    "128.0.0.1",
    "10.0.0.1",
    "192.168.0.1",
    "127.0.0.256",
    "localhost.evil.com",
    "127.0.0.1.nip.io",
    "example.com",
    "",
  ];
  for (const h of yes) test(`${h} is loopback`, () => expect(isLoopback(h)).toBe(true));
  for (const h of no) test(`${JSON.stringify(h)} is not loopback`, () => expect(isLoopback(h)).toBe(false));
  test("hostOf strips ports and keeps IPv6 brackets", () => {
    expect(hostOf("127.0.0.1:7200")).toBe("127.0.0.1");
    expect(hostOf("[::1]:7200")).toBe("[::1]");
    expect(hostOf("example.com")).toBe("example.com");
  });
});

describe("token check", () => {
  const check = createTokenCheck("s3cret-token");
  test("accepts only the exact token", () => {
    expect(check("s3cret-token")).toBe(true);
    for (const bad of ["", "s3cret-toke", "s3cret-tokenn", "S3CRET-TOKEN", " s3cret-token", "x".repeat(10_000)]) {
      expect(check(bad)).toBe(false);
    }
  });
  test("an empty configured token never matches", () => {
    expect(createTokenCheck("")("")).toBe(false);
  });
  test("bearerToken parses the header", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer  abc")).toBe("abc");
    expect(bearerToken("Bearer")).toBe("");
    expect(bearerToken("Basic abc")).toBeNull();
    expect(bearerToken(null)).toBeNull();
  });
});

describe("failure limiter", () => {
  test("locks an address after maxFailures within the window, then lets it try again", () => {
    let now = 1_000_000;
    const l = createFailureLimiter({ maxFailures: 3, windowMs: 10_000, now: () => now });
    for (let i = 0; i < 3; i++) {
      expect(l.retryAfter("1.2.3.4")).toBe(0);
      l.recordFailure("1.2.3.4");
      now += 1000;
    }
    expect(l.retryAfter("1.2.3.4")).toBe(7000);
    expect(l.retryAfter("5.6.7.8")).toBe(0);
    now += 7000;
    expect(l.retryAfter("1.2.3.4")).toBe(0);
  });
  test("the table of addresses is bounded", () => {
    const l = createFailureLimiter({ maxFailures: 1, maxAddresses: 2 });
    l.recordFailure("a");
    l.recordFailure("b");
    l.recordFailure("c");
    expect(l.retryAfter("a")).toBe(0);
    expect(l.retryAfter("b")).toBeGreaterThan(0);
    expect(l.retryAfter("c")).toBeGreaterThan(0);
  });
  test("guesses spread over 40 addresses hit the global limit; an address that authenticated before is exempt", () => {
    let now = 1_000_000;
    const l = createFailureLimiter({ maxFailures: 5, maxGlobalFailures: 50, windowMs: 60_000, now: () => now });
    l.recordSuccess("127.0.0.1");
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      const addr = `127.0.0.${2 + (i % 40)}`;
      if (l.retryAfter(addr) > 0) refused++;
      else l.recordFailure(addr);
      now += 1;
    }
    expect(refused).toBe(150);
    expect(l.retryAfter("127.0.0.99")).toBeGreaterThan(0); // a fresh address is held by the global limit
    expect(l.retryAfter("127.0.0.1")).toBe(0); // the operator's own address still gets in
    now += 60_000;
    expect(l.retryAfter("127.0.0.99")).toBe(0);
  });
  test("IPv6 addresses count per /64; IPv4-mapped addresses count as their IPv4", () => {
    expect(limiterKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(limiterKey("[2001:0db8:0001:0002:ffff:1:2:3]")).toBe("2001:db8:1:2::/64");
    expect(limiterKey("::1")).toBe("0:0:0:0::/64");
    expect(limiterKey("::ffff:10.0.0.7")).toBe("10.0.0.7");
    const l = createFailureLimiter({ maxFailures: 3, maxGlobalFailures: 1000 });
    for (let i = 1; i <= 3; i++) l.recordFailure(`2001:db8:1:2::${i.toString(16)}`);
    expect(l.retryAfter("2001:db8:1:2:ffff::9")).toBeGreaterThan(0);
    expect(l.retryAfter("2001:db8:1:3::1")).toBe(0);
    for (let i = 0; i < 3; i++) l.recordFailure("::ffff:192.0.2.1");
    expect(l.retryAfter("192.0.2.1")).toBeGreaterThan(0);
  });
});

describe("origin and host policy", () => {
  const open: ExposurePolicy = {
    bind: "127.0.0.1",
    tls: false,
    tokenRequired: false,
    allowedOrigins: ["https://ui.example"],
  };
  const guarded: ExposurePolicy = { bind: "0.0.0.0", tls: true, tokenRequired: true, allowedOrigins: [] };
  const cases: [string, ExposurePolicy, string | null, string, boolean][] = [
    ["no Origin (non-browser client)", open, null, "127.0.0.1:7200", true],
    ["own origin", open, "http://127.0.0.1:7200", "127.0.0.1:7200", true],
    ["own origin via localhost", open, "http://localhost:7200", "localhost:7200", true],
    ["another local port", open, "http://127.0.0.1:3000", "127.0.0.1:7200", false],
    ["a public site", open, "https://evil.example", "127.0.0.1:7200", false],
    ["an allowed origin", open, "https://ui.example", "127.0.0.1:7200", true],
    ["the string null (sandboxed iframe)", open, "null", "127.0.0.1:7200", false],
    ["DNS rebinding: same origin but a foreign Host", open, "http://evil.example:7200", "evil.example:7200", false],
    ["a public host with a token, same origin over TLS", guarded, "https://gw.example.com", "gw.example.com", true],
    ["http origin to a TLS gateway", guarded, "http://gw.example.com", "gw.example.com", false],
  ];
  for (const [name, policy, origin, host, allowed] of cases) {
    test(`${name} → ${allowed ? "allowed" : "refused"}`, () =>
      expect(isOriginAllowed(policy, origin, host)).toBe(allowed));
  }
  test("tokenless gateways answer only loopback Host names", () => {
    expect(isHostAllowed(open, "127.0.0.1:7200")).toBe(true);
    expect(isHostAllowed(open, "[::1]:7200")).toBe(true);
    expect(isHostAllowed(open, "evil.example")).toBe(false);
    expect(isHostAllowed(open, null)).toBe(false);
    expect(isHostAllowed(guarded, "anything.example")).toBe(true);
  });
  test("public_url: its host (and port) reaches webhooks only on a tokenless gateway, everything with a token; its origin may connect", () => {
    const proxied: ExposurePolicy = { ...open, allowedOrigins: [], publicUrl: "https://bot.example.com" };
    expect(hostAccess(proxied, "bot.example.com")).toBe("webhooks");
    expect(hostAccess(proxied, "BOT.example.com")).toBe("webhooks");
    expect(hostAccess(proxied, "bot.example.com:8443")).toBe("none");
    expect(hostAccess(proxied, "evil.example")).toBe("none");
    expect(hostAccess(proxied, "127.0.0.1:7200")).toBe("all");
    expect(hostAccess({ ...proxied, publicUrl: "https://bot.example.com:8443" }, "bot.example.com:8443")).toBe(
      "webhooks",
    );
    expect(hostAccess({ ...guarded, publicUrl: "https://bot.example.com" }, "bot.example.com")).toBe("all");
    expect(
      isOriginAllowed(
        { ...guarded, tls: false, publicUrl: "https://bot.example.com" },
        "https://bot.example.com",
        "bot.example.com",
      ),
    ).toBe(true);
    expect(isOriginAllowed({ ...guarded, tls: false }, "https://bot.example.com", "bot.example.com")).toBe(false);
  });
});

describe("createAuthenticator: the one token check", () => {
  test("no token configured: everything is ok, nothing is counted", () => {
    const auth = createAuthenticator("");
    expect(auth.required).toBe(false);
    expect([auth.check(null, "a"), auth.check("x", "a")]).toEqual(["ok", "ok"]);
  });

  test("the right token is ok; a wrong one is counted; none at all is missing and not counted", () => {
    let t = 0;
    const auth = createAuthenticator("s3cret-token", { maxFailures: 2, windowMs: 1000, now: () => t });
    expect(auth.check("s3cret-token", "10.0.0.1")).toBe("ok");
    for (let i = 0; i < 5; i++) expect(auth.check(null, "10.0.0.2")).toBe("missing");
    expect(auth.check("s3cret-token", "10.0.0.2")).toBe("ok");
    expect([auth.check("nope", "10.0.0.3"), auth.check("s3cret-tokeN", "10.0.0.3")]).toEqual(["wrong", "wrong"]);
    // Over its limit an address is limited whatever it presents, the right token and none included.
    expect([auth.check("s3cret-token", "10.0.0.3"), auth.check(null, "10.0.0.3")]).toEqual(["limited", "limited"]);
    expect(auth.retryAfter("10.0.0.3")).toBe(1000);
    expect(auth.check("s3cret-token", "10.0.0.4")).toBe("ok");
    t = 1001;
    expect(auth.check("s3cret-token", "10.0.0.3")).toBe("ok");
  });

  test("refusalOf: what a refused caller is told, kind and wait", () => {
    expect(refusalOf("missing")).toMatchObject({
      code: "unauthorized",
      message: "Authorization: Bearer <token> required",
    });
    expect(refusalOf("wrong")).toMatchObject({ code: "unauthorized", message: "invalid token" });
    expect(refusalOf("limited", 2500)).toMatchObject({ code: "rate_limited", data: { retry_after_s: 3 } });
  });
});
