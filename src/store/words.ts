/** Search words of free text: letters and digits of any script, lower-cased, 2+ characters, unique. */
export function searchWords(text: string, max = 16): string[] {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) ?? [];
  return [...new Set(words)].slice(0, max);
}
