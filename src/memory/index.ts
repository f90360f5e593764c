/** The memory capability (SPEC §11): the soul, facts per person, and the module that decides what a turn remembers. */
export { type HostTool, MAX_FACT_CHARS, memoryTools, personOf, recall } from "./semantic.ts";
export { createSoulReader, MAX_SOUL_BYTES, soulPath } from "./soul.ts";
export { MemoryModule } from "./module.ts";
