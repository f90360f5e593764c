// A small JSON reader and writer for plugins: enough for the exoclaw ABI (objects, arrays,
// strings with every escape, numbers, booleans, null), UTF-16 in, exact round trips.

export enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: Array<JsonValue> = [];
  keys: Array<string> = [];

  static null(): JsonValue {
    return new JsonValue();
  }

  isNull(): bool {
    return this.kind == JsonKind.Null;
  }

  /** The member `key` of an object, or null. */
  get(key: string): JsonValue | null {
    if (this.kind != JsonKind.Object) return null;
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) return this.items[i];
    }
    return null;
  }

  /** The string member `key`, or `fallback` when absent or not a string. */
  getString(key: string, fallback: string = ""): string {
    const v = this.get(key);
    return v !== null && v.kind == JsonKind.String ? v.str : fallback;
  }

  getNumber(key: string, fallback: f64 = 0): f64 {
    const v = this.get(key);
    return v !== null && v.kind == JsonKind.Number ? v.num : fallback;
  }

  /** Serializes back to JSON text. */
  toString(): string {
    switch (this.kind) {
      case JsonKind.Null:
        return "null";
      case JsonKind.Bool:
        return this.bool ? "true" : "false";
      case JsonKind.Number:
        return formatNumber(this.num);
      case JsonKind.String:
        return quote(this.str);
      case JsonKind.Array: {
        const parts = new Array<string>();
        for (let i = 0; i < this.items.length; i++) parts.push(this.items[i].toString());
        return "[" + parts.join(",") + "]";
      }
      default: {
        const parts = new Array<string>();
        for (let i = 0; i < this.keys.length; i++) parts.push(quote(this.keys[i]) + ":" + this.items[i].toString());
        return "{" + parts.join(",") + "}";
      }
    }
  }
}

function formatNumber(n: f64): string {
  if (isNaN(n) || !isFinite(n)) return "null";
  if (n == Math.floor(n) && Math.abs(n) < 1e15) return (<i64>n).toString();
  return n.toString();
}

const HEX = "0123456789abcdef";

/** `s` as a JSON string literal. */
export function quote(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc = "";
    if (c == 0x22) esc = '\\"';
    else if (c == 0x5c) esc = "\\\\";
    else if (c == 0x0a) esc = "\\n";
    else if (c == 0x0d) esc = "\\r";
    else if (c == 0x09) esc = "\\t";
    else if (c < 0x20) esc = "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else continue;
    out += s.substring(start, i) + esc;
    start = i + 1;
  }
  return out + s.substring(start) + '"';
}

/** Thrown-free parser: `error` is set and `parse` returns null on bad input. */
export class JsonParser {
  private pos: i32 = 0;
  error: string = "";

  constructor(private text: string) {}

  parse(): JsonValue | null {
    const v = this.value(0);
    if (v === null) return null;
    this.ws();
    if (this.pos != this.text.length) return this.fail("trailing characters");
    return v;
  }

  private fail(msg: string): JsonValue | null {
    if (this.error.length == 0) this.error = msg + " at " + this.pos.toString();
    return null;
  }

  private ws(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) this.pos++;
      else break;
    }
  }

  private value(depth: i32): JsonValue | null {
    if (depth > 64) return this.fail("nesting too deep");
    this.ws();
    if (this.pos >= this.text.length) return this.fail("unexpected end");
    const c = this.text.charCodeAt(this.pos);
    const v = new JsonValue();
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      if (s === null) return null;
      v.kind = JsonKind.String;
      v.str = s;
      return v;
    }
    if (this.text.startsWith("true", this.pos)) {
      this.pos += 4;
      v.kind = JsonKind.Bool;
      v.bool = true;
      return v;
    }
    if (this.text.startsWith("false", this.pos)) {
      this.pos += 5;
      v.kind = JsonKind.Bool;
      return v;
    }
    if (this.text.startsWith("null", this.pos)) {
      this.pos += 4;
      return v;
    }
    return this.number();
  }

  private number(): JsonValue | null {
    const start = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if ((c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45) this.pos++;
      else break;
    }
    if (start == this.pos) return this.fail("unexpected character");
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    v.num = parseFloat(this.text.substring(start, this.pos));
    if (isNaN(v.num)) return this.fail("bad number");
    return v;
  }

  private string(): string | null {
    this.pos++; // opening quote
    let out = "";
    let start = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c == 0x22) {
        out += this.text.substring(start, this.pos);
        this.pos++;
        return out;
      }
      if (c == 0x5c) {
        out += this.text.substring(start, this.pos);
        this.pos++;
        if (this.pos >= this.text.length) break;
        const e = this.text.charCodeAt(this.pos);
        if (e == 0x6e) out += "\n";
        else if (e == 0x74) out += "\t";
        else if (e == 0x72) out += "\r";
        else if (e == 0x62) out += "\b";
        else if (e == 0x66) out += "\f";
        else if (e == 0x75) {
          if (this.pos + 4 >= this.text.length) break;
          const code = <i32>parseInt(this.text.substring(this.pos + 1, this.pos + 5), 16);
          if (isNaN(<f64>code)) break;
          out += String.fromCharCode(code);
          this.pos += 4;
        } else out += String.fromCharCode(e);
        this.pos++;
        start = this.pos;
        continue;
      }
      this.pos++;
    }
    this.fail("unterminated string");
    return null;
  }

  private array(depth: i32): JsonValue | null {
    this.pos++;
    const v = new JsonValue();
    v.kind = JsonKind.Array;
    this.ws();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return v;
    }
    while (true) {
      const item = this.value(depth + 1);
      if (item === null) return null;
      v.items.push(item);
      this.ws();
      if (this.pos >= this.text.length) return this.fail("unterminated array");
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x5d) return v;
      if (c != 0x2c) return this.fail("expected , or ]");
    }
  }

  private object(depth: i32): JsonValue | null {
    this.pos++;
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    this.ws();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return v;
    }
    while (true) {
      this.ws();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x22) return this.fail("expected a key");
      const key = this.string();
      if (key === null) return null;
      this.ws();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x3a) return this.fail("expected :");
      this.pos++;
      const item = this.value(depth + 1);
      if (item === null) return null;
      v.keys.push(key);
      v.items.push(item);
      this.ws();
      if (this.pos >= this.text.length) return this.fail("unterminated object");
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x7d) return v;
      if (c != 0x2c) return this.fail("expected , or }");
    }
  }
}

/** Builds a JSON object text field by field. */
export class JsonObject {
  private parts: Array<string> = [];

  str(key: string, value: string): JsonObject {
    this.parts.push(quote(key) + ":" + quote(value));
    return this;
  }

  num(key: string, value: f64): JsonObject {
    this.parts.push(quote(key) + ":" + formatNumber(value));
    return this;
  }

  bool(key: string, value: bool): JsonObject {
    this.parts.push(quote(key) + ":" + (value ? "true" : "false"));
    return this;
  }

  /** Adds already-serialized JSON. */
  raw(key: string, json: string): JsonObject {
    this.parts.push(quote(key) + ":" + json);
    return this;
  }

  toString(): string {
    return "{" + this.parts.join(",") + "}";
  }
}
