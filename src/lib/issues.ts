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
  // A custom message (regex, check) says more than valibot's generic one.
  if (!issue.message.startsWith("Invalid ")) return issue.message;
  const expected = issue.expected ?? issue.type.replace(/_/g, " ");
  return `expected ${expected}, got ${issue.received}`;
}
