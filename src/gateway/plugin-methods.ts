/** RPC methods over the plugin host (SPEC §5): `plugin.list`, `plugin.load`, `plugin.unload`. */
import * as v from "valibot";
import { ExoError } from "../lib/errors.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";
import type { PluginRegistry } from "../sandbox/index.ts";

const Name = v.strictObject({ name: v.pipe(v.string(), v.regex(/^[a-z0-9_-]+$/, "plugin names match [a-z0-9_-]+")) });

export function pluginMethods(registry: PluginRegistry): Map<string, Method<never>> {
  return new Map([
    ["plugin.list", defineMethod({ handle: () => ({ plugins: registry.list() }) })],
    [
      "plugin.load",
      defineMethod({
        params: Name,
        operator: true,
        // Loads (or reloads) the `[[plugins]]` entry of that name from the config file on disk.
        handle: (p) => registry.loadFromConfig(p.name),
      }),
    ],
    [
      "plugin.unload",
      defineMethod({
        params: Name,
        operator: true,
        handle: (p) => {
          if (!registry.unload(p.name)) throw new ExoError("not_found", `no plugin named ${p.name}`);
          return { name: p.name, unloaded: true };
        },
      }),
    ],
  ]);
}
