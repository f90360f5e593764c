// notes: a small persistent notebook for an agent — remember, recall and forget notes by topic.
// State lives in the host's store (exo_kv_*), so it survives restarts; nothing else is needed.
import { fail, inputJson, JsonKind, JsonParser, JsonValue, kvGet, kvSet, now, output, quote, toolResult } from "../sdk";
export { abort } from "../sdk";

const DESCRIBE = `{
  "abi": 1, "name": "notes", "version": "1.0.0", "kind": "tool",
  "description": "A persistent notebook: remember facts under a topic, recall them later, forget them.",
  "tools": [
    {"name": "remember", "description": "Save a note under a topic.",
     "input_schema": {"type": "object", "properties": {"topic": {"type": "string"}, "text": {"type": "string"}}, "required": ["topic", "text"]}, "effects": ["mutates"]},
    {"name": "recall", "description": "List the notes of a topic, or all topics when none is given.",
     "input_schema": {"type": "object", "properties": {"topic": {"type": "string"}}}, "effects": []},
    {"name": "forget", "description": "Delete every note of a topic.",
     "input_schema": {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}, "effects": ["mutates"]}
  ]
}`;

const MAX_NOTES = 200;

export function describe(): i32 {
  output(DESCRIBE);
  return 0;
}

function load(key: string): JsonValue {
  const raw = kvGet(key);
  if (raw === null) return new JsonValue();
  const v = new JsonParser(raw).parse();
  return v === null || v.kind != JsonKind.Array ? new JsonValue() : v;
}

function topicsAdd(topic: string): void {
  const topics = load("topics");
  for (let i = 0; i < topics.items.length; i++) if (topics.items[i].str == topic) return;
  const parts = new Array<string>();
  for (let i = 0; i < topics.items.length; i++) parts.push(quote(topics.items[i].str));
  parts.push(quote(topic));
  kvSet("topics", "[" + parts.join(",") + "]");
}

export function call(): i32 {
  const req = inputJson();
  const tool = req.getString("tool");
  const input = req.get("input");
  const topic = input === null ? "" : input.getString("topic").trim();
  if (tool == "remember") {
    const text = input === null ? "" : input.getString("text");
    if (topic.length == 0 || text.length == 0) return toolResult("topic and text are required", true);
    const notes = load("topic:" + topic);
    const parts = new Array<string>();
    const start = notes.items.length >= MAX_NOTES ? notes.items.length - MAX_NOTES + 1 : 0;
    for (let i = start; i < notes.items.length; i++) parts.push(notes.items[i].toString());
    parts.push("[" + now().toString() + "," + quote(text) + "]");
    kvSet("topic:" + topic, "[" + parts.join(",") + "]");
    topicsAdd(topic);
    return toolResult("remembered under " + topic + " (" + parts.length.toString() + " notes)");
  }
  if (tool == "recall") {
    if (topic.length == 0) {
      const topics = load("topics");
      if (topics.items.length == 0) return toolResult("no notes yet");
      const names = new Array<string>();
      for (let i = 0; i < topics.items.length; i++) names.push(topics.items[i].str);
      return toolResult("topics: " + names.join(", "));
    }
    const notes = load("topic:" + topic);
    if (notes.items.length == 0) return toolResult("no notes about " + topic);
    const lines = new Array<string>();
    for (let i = 0; i < notes.items.length; i++) {
      const n = notes.items[i];
      if (n.kind == JsonKind.Array && n.items.length == 2) lines.push("- " + n.items[1].str);
    }
    return toolResult(lines.join("\n"));
  }
  if (tool == "forget") {
    if (topic.length == 0) return toolResult("topic is required", true);
    kvSet("topic:" + topic, null);
    const topics = load("topics");
    const keep = new Array<string>();
    for (let i = 0; i < topics.items.length; i++) if (topics.items[i].str != topic) keep.push(quote(topics.items[i].str));
    kvSet("topics", "[" + keep.join(",") + "]");
    return toolResult("forgot " + topic);
  }
  return fail("unknown tool: " + tool);
}
