export { createSoulReader, MAX_SOUL_BYTES, soulPath } from "./soul.ts";
