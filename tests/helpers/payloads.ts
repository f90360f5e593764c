/**
 * Mutating a platform's payload field by field, for the channel contract and webhook fuzz tests:
 * every path to a value in a JSON value (objects and arrays walked), and a copy with one path set to
 * a new value or removed.
 */

export type Path = (string | number)[];

/** Every path to a value in `v`, the root (`[]`) first. */
export function paths(v: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (typeof v === "object" && v !== null)
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

/** A copy of `v` with `path` set to `value`, or (`remove`, a non-root path) taken out. `v` is not changed. */
export function setAt(v: unknown, path: Path, value: unknown, remove: boolean): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy: any = Array.isArray(v) ? [...v] : { ...(v as object) };
  if (rest.length === 0 && remove) {
    if (Array.isArray(copy)) copy.splice(head as number, 1);
    else delete copy[head!];
  } else copy[head!] = setAt(copy[head!], rest, value, remove);
  return copy;
}

/**
 * A WhatsApp webhook notification (wire-formats B3) carrying one change whose `value` is the given
 * fields after `messaging_product` (the messages, statuses, metadata of the test).
 */
export const whatsappNotification = (value: Record<string, unknown>) => ({
  object: "whatsapp_business_account",
  entry: [{ id: "1", changes: [{ field: "messages", value: { messaging_product: "whatsapp", ...value } }] }],
});
