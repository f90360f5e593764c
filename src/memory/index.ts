export { type HostTool, MAX_FACT_CHARS, memoryTools, personOf, recall } from "./semantic.ts";
export { createSoulReader, MAX_SOUL_BYTES, soulPath } from "./soul.ts";
