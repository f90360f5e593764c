// bun test preload: the plugin tests need real .wasm built from plugins/ and tests/fixtures/plugins/.
import { buildPlugins } from "../scripts/build-plugins.ts";

await buildPlugins({ quiet: true });
