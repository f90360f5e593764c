// bun test preload: the plugin tests need real .wasm built from plugins/ and tests/fixtures/plugins/.
import { setDefaultTimeout } from "bun:test";
import { buildPlugins } from "../scripts/build-plugins.ts";

// Tests start real servers and processes; give a slow 2-core CI machine room.
setDefaultTimeout(30_000);

await buildPlugins({ quiet: true });
