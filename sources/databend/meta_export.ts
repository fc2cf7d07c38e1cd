/**
 * Parses the `databend-metactl export` line format: one JSON array
 * `[tree, entry]` per line, where `entry` is an object with a single kind key
 * (`DataHeader`, `NodeId`, `Vote`, `LogEntry`, `Sequences`, `GenericKV`, …).
 * Only `GenericKV` values are decoded; other kinds are passed through.
 *
 * Error messages name the line number and the problem but never quote the
 * line: values may hold secrets.
 *
 * @module
 */

/** Meta of a stored value; absent fields are omitted by the exporter. */
export interface KvMeta {
  /** Expiry, in seconds since the epoch. */
  readonly expireAt?: number;
  /** When the write was proposed, in milliseconds (servers from v1.2.823). */
  readonly proposedAtMs?: number;
}

/** A `GenericKV` value: its seq, meta (`null` or an object) and bytes. */
export interface SeqValue {
  readonly seq: number;
  readonly meta: KvMeta | null;
  readonly data: Uint8Array;
}

/** One parsed line of an export. */
export interface ExportEntry {
  /** `header`, `raft_log`, `state_machine/0`, … */
  readonly tree: string;
  /** The entry's single key: `GenericKV`, `LogEntry`, `NodeId`, … */
  readonly kind: string;
  /** The entry's `key` when it is a string or a number (as a string). */
  readonly key?: string;
  /** The entry's `value` for key/value kinds, else the whole entry body (as JSON). */
  readonly value?: unknown;
  /** The decoded value of a `GenericKV` entry. */
  readonly kv?: SeqValue;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function where(lineNumber: number | undefined): string {
  return lineNumber === undefined ? "meta export line" : `meta export line ${lineNumber}`;
}

function isU64(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function parseKvMeta(v: unknown, at: string): KvMeta | null {
  if (v === null || v === undefined) return null;
  if (!isObject(v)) throw new SyntaxError(`${at}: the GenericKV meta must be null or an object`);
  const out: { expireAt?: number; proposedAtMs?: number } = {};
  const expire = v["expire_at"];
  if (expire !== undefined && expire !== null) {
    if (!isU64(expire)) throw new SyntaxError(`${at}: expire_at must be a non-negative integer`);
    out.expireAt = expire;
  }
  const proposed = v["proposed_at_ms"];
  if (proposed !== undefined && proposed !== null) {
    if (!isU64(proposed)) {
      throw new SyntaxError(`${at}: proposed_at_ms must be a non-negative integer`);
    }
    out.proposedAtMs = proposed;
  }
  return out;
}

function parseSeqValue(v: unknown, at: string): SeqValue {
  if (!isObject(v)) throw new SyntaxError(`${at}: the GenericKV value must be an object`);
  const seq = v["seq"];
  if (!isU64(seq)) throw new SyntaxError(`${at}: the GenericKV seq must be a non-negative integer`);
  const data = v["data"];
  if (!Array.isArray(data)) throw new SyntaxError(`${at}: the GenericKV data must be a byte array`);
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const b: unknown = data[i];
    if (typeof b !== "number" || !Number.isInteger(b) || b < 0 || b > 255) {
      throw new SyntaxError(`${at}: the GenericKV data must hold bytes (0 to 255)`);
    }
    bytes[i] = b;
  }
  return { seq, meta: parseKvMeta(v["meta"], at), data: bytes };
}

/**
 * Parses one line of an export. `lineNumber` (1-based) is used in messages.
 *
 * @throws {SyntaxError} when the line is not JSON, not a `[tree, {kind: …}]`
 * pair, or a `GenericKV` value is malformed.
 */
export function parseExportLine(line: string, lineNumber?: number): ExportEntry {
  const at = where(lineNumber);
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    // The parser's message quotes the text, which may hold secrets: leave it out.
    throw new SyntaxError(`${at} is not valid JSON: check that the file is a metactl export`);
  }
  if (!Array.isArray(json) || json.length !== 2 || typeof json[0] !== "string") {
    throw new SyntaxError(
      `${at} is not a [tree, entry] pair: check that the file is a metactl export`,
    );
  }
  const tree: string = json[0];
  const entry: unknown = json[1];
  if (!isObject(entry)) {
    throw new SyntaxError(
      `${at}: the entry must be an object: check that the file is a metactl export`,
    );
  }
  const kinds = Object.keys(entry);
  const kind = kinds[0];
  if (kinds.length !== 1 || kind === undefined) {
    throw new SyntaxError(`${at}: the entry must have exactly one kind key, found ${kinds.length}`);
  }
  const body = entry[kind];
  const out: { tree: string; kind: string; key?: string; value?: unknown; kv?: SeqValue } = {
    tree,
    kind,
  };
  if (isObject(body) && "key" in body && "value" in body) {
    const key = body["key"];
    if (typeof key === "string") out.key = key;
    else if (typeof key === "number") out.key = String(key);
    out.value = body["value"];
  } else {
    out.value = body;
  }
  if (kind === "GenericKV") {
    if (out.key === undefined || !isObject(body) || typeof body["key"] !== "string") {
      throw new SyntaxError(`${at}: a GenericKV entry needs a string key and a value`);
    }
    out.kv = parseSeqValue(out.value, at);
  }
  return out;
}

/**
 * Splits a stream of text or UTF-8 bytes into lines (without the line end;
 * a trailing `\r` is removed).
 */
export async function* splitLines(
  chunks: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let rest = "";
  for await (const chunk of chunks) {
    rest += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let nl = rest.indexOf("\n");
    while (nl >= 0) {
      const line = rest.slice(0, nl);
      yield line.endsWith("\r") ? line.slice(0, -1) : line;
      rest = rest.slice(nl + 1);
      nl = rest.indexOf("\n");
    }
  }
  rest += decoder.decode();
  if (rest !== "") yield rest.endsWith("\r") ? rest.slice(0, -1) : rest;
}

/**
 * Parses an export line by line, numbering lines from 1 and skipping blank
 * lines.
 *
 * @throws {SyntaxError} as {@link parseExportLine}.
 */
export async function* parseExport(
  lines: Iterable<string> | AsyncIterable<string>,
): AsyncGenerator<ExportEntry> {
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === "") continue;
    yield parseExportLine(line, n);
  }
}
