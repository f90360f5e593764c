/** The nats store's and bus's config keys: server lists, replicas, namespace, and the clear refusals. */
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/index.ts";
import { tempDir } from "../helpers/temp.ts";

function loadToml(toml: string) {
  using dir = tempDir();
  return loadConfig({ EXOCLAW_HOME: dir.path }, { file: dir.file("config.toml", toml) });
}

describe("[store] and [bus] NATS keys", () => {
  test("nats_url takes one URL, a comma-separated list or an array, kept as one comma-separated list", () => {
    expect(loadToml('[bus]\nnats_url = "nats://127.0.0.1:4222"\n').bus.nats_url).toBe("nats://127.0.0.1:4222");
    expect(loadToml('[bus]\nnats_url = " nats://10.0.0.1:4222 , nats://10.0.0.2:4222,"\n').bus.nats_url).toBe(
      "nats://10.0.0.1:4222,nats://10.0.0.2:4222",
    );
    const c = loadToml(
      '[store]\nkind = "nats"\nnats_url = ["nats://a:4222", "tls://b:4222", "c:4222"]\nreplicas = 3\nnamespace = "prod-eu"\n',
    );
    expect(c.store).toEqual({
      kind: "nats",
      nats_url: "nats://a:4222,tls://b:4222,c:4222",
      replicas: 3,
      namespace: "prod-eu",
    });
  });

  test("defaults: one replica, namespace exoclaw, the store's servers empty (the bus's are used)", () => {
    expect(loadToml('[bus]\nnats_url = "nats://n:4222"\n[store]\nkind = "nats"\n').store).toEqual({
      kind: "nats",
      nats_url: "",
      replicas: 1,
      namespace: "exoclaw",
    });
    expect(loadToml("").store).toMatchObject({ kind: "sqlite", replicas: 1 });
  });

  test("bad values are refused with the key named", () => {
    expect(() => loadToml('[bus]\nnats_url = "http://example.com/nats"\n')).toThrow(
      /bus\.nats_url: expected nats:\/\/host:port/,
    );
    expect(() => loadToml('[store]\nnats_url = ["nats://a:1", "not a url"]\n')).toThrow(/store\.nats_url/);
    expect(() => loadToml("[store]\nreplicas = 0\n")).toThrow(/store\.replicas/);
    expect(() => loadToml("[store]\nreplicas = 7\n")).toThrow(/store\.replicas/);
    expect(() => loadToml('[store]\nnamespace = "a.b"\n')).toThrow(/store\.namespace: namespace must match/);
    expect(() => loadToml('[store]\nkind = "nats"\n')).toThrow(
      'store.nats_url: store.kind = "nats" needs the NATS servers',
    );
  });
});
