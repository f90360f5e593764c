import { createMemoryStore } from "../../src/store/index.ts";
import { storeContract } from "./contract.ts";

storeContract("memory", async () => {
  let t = 1_700_000_000_000;
  const store = createMemoryStore({ now: () => t });
  return { store, tick: (ms = 1000) => void (t += ms), [Symbol.asyncDispose]: () => store.close() };
});
