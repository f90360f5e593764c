import pkg from "../../package.json" with { type: "json" };

/** The exoclaw version, from package.json (inlined by the bundler in compiled binaries). */
export const VERSION: string = pkg.version;
