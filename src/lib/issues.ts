import type * as v from "valibot";

/** `agents[0].model` style path of a valibot issue; "(root)" for the top level. */
export function issuePath(issue: v.BaseIssue<unknown>): string {
  let out = "";
  for (const item of issue.path ?? []) {
    const key = item.key;
    out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`;
  }
  return out || "(root)";
}

/** A short reason for an issue: "unknown key", "expected string, got 5", "must match …". */
export function describeIssue(issue: v.BaseIssue<unknown>): string {
  if (issue.type === "strict_object" && issue.expected === "never") return "unknown key";
  if (issue.type === "strict_object" && issue.received === "undefined") return "missing required key";
  if (issue.kind === "schema" && issue.expected) return `expected ${issue.expected}, got ${issue.received}`;
  return issue.message.replace(/^Invalid \w+: /, "");
}
