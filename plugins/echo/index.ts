// echo: a tool plugin that answers with what it was given. The smallest complete example.
import { fail, inputJson, JsonKind, output, toolResult } from "../sdk";
export { abort } from "../sdk";

const DESCRIBE = `{
  "abi": 1, "name": "echo", "version": "1.0.0", "kind": "tool",
  "description": "Echoes text back, unchanged.",
  "tools": [{
    "name": "echo",
    "description": "Returns the given text.",
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    "effects": []
  }]
}`;

export function describe(): i32 {
  output(DESCRIBE);
  return 0;
}

export function call(): i32 {
  const req = inputJson();
  if (req.kind != JsonKind.Object) return fail("input must be a JSON object");
  if (req.getString("tool") != "echo") return fail("unknown tool: " + req.getString("tool"));
  const input = req.get("input");
  if (input === null || input.kind != JsonKind.Object) return toolResult("input must be an object", true);
  return toolResult(input.getString("text"));
}
