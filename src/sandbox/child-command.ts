/** The argv that starts a plugin-host child: this binary when compiled, else `bun src/main.ts`. */
export function pluginHostCommand(): string[] {
  if (Bun.main.startsWith("/$bunfs/") || import.meta.path.startsWith("/$bunfs/"))
    return [process.execPath, "__plugin-host"];
  return [process.execPath, new URL("../main.ts", import.meta.url).pathname, "__plugin-host"];
}
