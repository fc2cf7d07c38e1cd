/**
 * The key-value state of a Databend meta service, rebuilt from a
 * `databend-metactl export`: the state machine snapshot (`state_machine/*`
 * `GenericKV` entries, the `generic-kv` sequence and `LastApplied`) with the
 * raft log entries after `LastApplied` replayed on top, as the meta service
 * does when it starts from an imported directory.
 *
 * The commands replayed are the ones that write keys, in the JSON shapes the
 * exporter prints (serde of Databend's `Cmd` and its protobuf transaction
 * types):
 *
 * - `{"UpsertKV": {key, seq, value, value_meta}}` with `seq` one of `"Any"`,
 *   `{"Exact": n}`, `{"GE": n}` and `value` one of `"AsIs"`, `"Delete"`,
 *   `{"Update": [bytes]}`;
 * - `{"Transaction": {condition, if_then, else_then, operations?}}`: each
 *   condition `{key, expected, target}` compares a key's seq (`{"Seq": n}`),
 *   value (`{"Value": [bytes]}`) or the number of keys under a prefix
 *   (`{"KeysWithPrefix": n}`) with `expected` (0 EQ, 1 GT, 2 GE, 3 LT, 4 LE,
 *   5 NE); `operations` (newer servers) are tried first, the first whose
 *   predicate holds runs; else `if_then` runs when every condition holds and
 *   `else_then` when one does not. Operations are `Put`, `Delete` (with an
 *   optional `match_seq`), `DeleteByPrefix` and `Get` (no write).
 *
 * Every write takes the next seq of the `generic-kv` sequence. Other
 * commands (`AddNode`, membership, …) do not touch keys and are skipped; a
 * command or operation of an unknown kind is skipped with a warning, since
 * it may have written a key the replay then misses.
 *
 * @module
 */

/** A stored value: its seq, bytes and expiry (ms since the epoch) if any. */
export interface StoredValue {
  readonly seq: number;
  readonly data: Uint8Array;
  readonly expireAtMs?: number;
}

/** One logged command, as read from a `LogEntry` line. */
export interface LoggedCommand {
  /** The raft log index. */
  readonly index: number;
  /** When the entry was proposed, in ms (`time_ms`), 0 when absent. */
  readonly timeMs: number;
  /** The `cmd` object of a `Normal` payload. */
  readonly cmd: unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function toBytes(v: unknown, at: string): Uint8Array {
  if (!Array.isArray(v)) throw new SyntaxError(`${at}: a value must be a byte array`);
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const b: unknown = v[i];
    if (typeof b !== "number" || !Number.isInteger(b) || b < 0 || b > 255) {
      throw new SyntaxError(`${at}: a value must hold bytes (0 to 255)`);
    }
    out[i] = b;
  }
  return out;
}

function toU64(v: unknown, at: string, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new SyntaxError(`${at}: ${what} must be a non-negative integer`);
  }
  return v;
}

/**
 * An expiry as Databend gives it: seconds, or milliseconds for values above
 * 100,000,000,000 (the meta service reads both).
 */
function expiryMs(v: unknown): number | undefined {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) return undefined;
  return v > 100_000_000_000 ? v : v * 1000;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Commands that change the cluster's membership or features, never a key. */
const NO_KEY_WRITES = new Set(["AddNode", "RemoveNode", "SetFeature"]);

const RESULTS = ["EQ", "GT", "GE", "LT", "LE", "NE"] as const;

function holds(cmp: number, expected: unknown, at: string): boolean {
  let e: string | undefined;
  if (typeof expected === "number") e = RESULTS[expected];
  else if (typeof expected === "string") e = expected.toUpperCase();
  switch (e) {
    case "EQ":
      return cmp === 0;
    case "GT":
      return cmp > 0;
    case "GE":
      return cmp >= 0;
    case "LT":
      return cmp < 0;
    case "LE":
      return cmp <= 0;
    case "NE":
      return cmp !== 0;
    default:
      throw new SyntaxError(`${at}: a transaction condition has an unknown "expected" result`);
  }
}

/**
 * The key-value state: load the snapshot with {@linkcode MetaState.load},
 * then {@linkcode MetaState.apply} the logged commands in order.
 *
 * @example
 * ```ts
 * import { MetaState } from "./meta_state.ts";
 * const s = new MetaState();
 * s.apply({ UpsertKV: { key: "a", seq: "Any", value: { Update: [49] }, value_meta: null } }, 0);
 * s.get("a")?.seq; // 1
 * ```
 */
export class MetaState {
  readonly #kv = new Map<string, StoredValue>();
  #seq = 0;
  #nowMs = 0;
  readonly #warnings: string[] = [];

  /** The last seq handed out (the `generic-kv` sequence). */
  get seq(): number {
    return this.#seq;
  }

  /** Sets the `generic-kv` sequence from the snapshot. */
  set seq(n: number) {
    this.#seq = Math.max(this.#seq, n);
  }

  /** Warnings about commands that were skipped. */
  get warnings(): readonly string[] {
    return this.#warnings;
  }

  /** Loads one snapshot value. */
  load(key: string, value: StoredValue): void {
    this.#kv.set(key, value);
    if (value.seq > this.#seq) this.#seq = value.seq;
  }

  /** The live value of `key` (an expired value counts as absent). */
  get(key: string): StoredValue | undefined {
    const v = this.#kv.get(key);
    if (v === undefined) return undefined;
    if (v.expireAtMs !== undefined && this.#nowMs > 0 && v.expireAtMs <= this.#nowMs) {
      return undefined;
    }
    return v;
  }

  /** Every live key with its value, in key order. */
  *entries(): IterableIterator<[string, StoredValue]> {
    for (const key of [...this.#kv.keys()].sort()) {
      const v = this.get(key);
      if (v !== undefined) yield [key, v];
    }
  }

  #put(key: string, data: Uint8Array, expireAtMs: number | undefined): void {
    this.#seq += 1;
    this.#kv.set(key, {
      seq: this.#seq,
      data,
      ...(expireAtMs === undefined ? {} : { expireAtMs }),
    });
  }

  /**
   * Applies one logged command proposed at `timeMs`.
   *
   * @throws {SyntaxError} when a command of a known kind is malformed.
   */
  apply(cmd: unknown, timeMs: number, at = "meta export raft log entry"): void {
    if (timeMs > 0) this.#nowMs = timeMs;
    if (!isObject(cmd)) return;
    const [kind] = Object.keys(cmd);
    const body = kind === undefined ? undefined : cmd[kind];
    if (kind === "UpsertKV") this.#upsert(body, at);
    else if (kind === "Transaction") this.#transaction(body, at);
    else if (kind !== undefined && !NO_KEY_WRITES.has(kind)) {
      this.#warnings.push(`${at}: a ${kind} command was not replayed (unknown kind)`);
    }
  }

  #upsert(body: unknown, at: string): void {
    if (!isObject(body) || typeof body["key"] !== "string") {
      throw new SyntaxError(`${at}: an UpsertKV needs a string key`);
    }
    const key = body["key"];
    const cur = this.get(key);
    const curSeq = cur?.seq ?? 0;
    const m = body["seq"];
    let match: boolean;
    if (m === "Any" || m === undefined || m === null) match = true;
    else if (isObject(m) && "Exact" in m) match = curSeq === toU64(m["Exact"], at, "Exact");
    else if (isObject(m) && "GE" in m) match = curSeq >= toU64(m["GE"], at, "GE");
    else throw new SyntaxError(`${at}: an UpsertKV has an unknown seq match`);
    if (!match) return;
    const meta = body["value_meta"];
    const expireAtMs = isObject(meta) ? expiryMs(meta["expire_at"]) : undefined;
    const value = body["value"];
    if (value === "AsIs") {
      if (cur !== undefined) this.#put(key, cur.data, expireAtMs);
    } else if (value === "Delete") {
      this.#kv.delete(key);
    } else if (isObject(value) && "Update" in value) {
      this.#put(key, toBytes(value["Update"], at), expireAtMs);
    } else {
      throw new SyntaxError(`${at}: an UpsertKV has an unknown value operation`);
    }
  }

  #condition(c: unknown, at: string): boolean {
    if (!isObject(c) || typeof c["key"] !== "string") {
      throw new SyntaxError(`${at}: a transaction condition needs a string key`);
    }
    const key = c["key"];
    const target = c["target"];
    if (!isObject(target)) throw new SyntaxError(`${at}: a transaction condition needs a target`);
    const cur = this.get(key);
    let cmp: number;
    if ("Seq" in target) {
      cmp = (cur?.seq ?? 0) - toU64(target["Seq"], at, "a condition's Seq");
    } else if ("Value" in target) {
      if (cur === undefined) return false;
      cmp = compareBytes(cur.data, toBytes(target["Value"], at));
    } else if ("KeysWithPrefix" in target) {
      let n = 0;
      for (const k of this.#kv.keys()) if (k.startsWith(key) && this.get(k) !== undefined) n++;
      cmp = n - toU64(target["KeysWithPrefix"], at, "a condition's KeysWithPrefix");
    } else {
      throw new SyntaxError(`${at}: a transaction condition has an unknown target`);
    }
    return holds(cmp, c["expected"], at);
  }

  #expression(e: unknown, at: string): boolean {
    if (e === null || e === undefined) return true;
    if (!isObject(e)) throw new SyntaxError(`${at}: a predicate must be an object`);
    const op = e["operator"];
    const or = op === 1 || op === "OR" || op === "Or";
    const results: boolean[] = [];
    for (const c of Array.isArray(e["conditions"]) ? e["conditions"] : []) {
      results.push(this.#condition(c, at));
    }
    for (const s of Array.isArray(e["sub_expressions"]) ? e["sub_expressions"] : []) {
      results.push(this.#expression(s, at));
    }
    return or ? results.some((r) => r) : results.every((r) => r);
  }

  #ops(ops: unknown, at: string): void {
    if (ops === undefined || ops === null) return;
    if (!Array.isArray(ops)) throw new SyntaxError(`${at}: transaction operations must be a list`);
    for (const op of ops) {
      const req = isObject(op) ? op["request"] : undefined;
      if (!isObject(req)) throw new SyntaxError(`${at}: a transaction operation needs a request`);
      const [kind] = Object.keys(req);
      const b = kind === undefined ? undefined : req[kind];
      if (kind === "Put" && isObject(b) && typeof b["key"] === "string") {
        const ttl = typeof b["ttl_ms"] === "number" && b["ttl_ms"] > 0 && this.#nowMs > 0
          ? this.#nowMs + b["ttl_ms"]
          : undefined;
        this.#put(b["key"], toBytes(b["value"], at), expiryMs(b["expire_at"]) ?? ttl);
      } else if (kind === "Delete" && isObject(b) && typeof b["key"] === "string") {
        const cur = this.get(b["key"]);
        const ms = b["match_seq"];
        if (cur !== undefined && (ms === null || ms === undefined || ms === cur.seq)) {
          this.#kv.delete(b["key"]);
        }
      } else if (kind === "DeleteByPrefix" && isObject(b) && typeof b["prefix"] === "string") {
        const prefix = b["prefix"];
        for (const k of [...this.#kv.keys()]) if (k.startsWith(prefix)) this.#kv.delete(k);
      } else if (kind === "Get") {
        // A read: nothing to apply.
      } else {
        this.#warnings.push(
          `${at}: a transaction operation ${kind ?? "(none)"} was not replayed (unknown kind)`,
        );
      }
    }
  }

  #transaction(body: unknown, at: string): void {
    if (!isObject(body)) throw new SyntaxError(`${at}: a Transaction must be an object`);
    const operations = body["operations"];
    if (Array.isArray(operations)) {
      for (const o of operations) {
        if (!isObject(o)) throw new SyntaxError(`${at}: a conditional operation must be an object`);
        if (this.#expression(o["predicate"], at)) {
          this.#ops(o["operations"], at);
          return;
        }
      }
    }
    const conditions = Array.isArray(body["condition"]) ? body["condition"] : [];
    // Every condition is evaluated against the state before the transaction.
    const ok = conditions.map((c) => this.#condition(c, at)).every((r) => r);
    this.#ops(ok ? body["if_then"] : body["else_then"], at);
  }
}

/**
 * Reads a `LogEntry` (V004) or `Logs` (older exports) line body into a
 * command, or null when the entry carries no command (membership, blank).
 *
 * @throws {SyntaxError} when the log id is malformed.
 */
export function logCommand(body: unknown, at: string): LoggedCommand | null {
  if (!isObject(body)) return null;
  const logId = body["log_id"];
  if (!isObject(logId)) throw new SyntaxError(`${at}: a log entry needs a log_id`);
  const index = toU64(logId["index"], at, "a log index");
  const payload = body["payload"];
  if (!isObject(payload)) return null;
  const normal = payload["Normal"];
  if (!isObject(normal)) return null;
  const time = normal["time_ms"];
  return {
    index,
    timeMs: typeof time === "number" && Number.isFinite(time) ? time : 0,
    cmd: normal["cmd"],
  };
}

/** Reads the index of a `LastApplied` state machine meta value (`{"LogId": {…, index}}`). */
export function lastAppliedIndex(value: unknown): number | null {
  if (!isObject(value)) return null;
  const logId = isObject(value["LogId"]) ? value["LogId"] : value;
  const index = logId["index"];
  return typeof index === "number" && Number.isSafeInteger(index) && index >= 0 ? index : null;
}
