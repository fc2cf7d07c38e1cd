import assert from "node:assert/strict";
import { buildSampleCluster } from "../../testdata/make_sample_cluster.ts";
import { parseExportLine } from "./meta_export.ts";
import { lastAppliedIndex, logCommand, MetaState } from "./meta_state.ts";

const SAMPLE = new URL("../../testdata/sample-cluster/meta-export.jsonl", import.meta.url);
const te = new TextEncoder();

function bytes(s: string): number[] {
  return [...te.encode(s)];
}

function put(key: string, value: string) {
  return { request: { Put: { key, value: bytes(value), expire_at: null, match_seq: null } } };
}

function upsert(key: string, value: string, seq: unknown = "Any") {
  return { UpsertKV: { key, seq, value: { Update: bytes(value) }, value_meta: null } };
}

function dataOf(s: MetaState, key: string): string | undefined {
  const v = s.get(key);
  return v === undefined ? undefined : new TextDecoder().decode(v.data);
}

Deno.test("MetaState replays the sample export's log after LastApplied to the cluster's final state", async () => {
  const state = new MetaState();
  const log: { index: number; timeMs: number; cmd: unknown }[] = [];
  let lastApplied: number | null = null;
  let n = 0;
  for (const line of (await Deno.readTextFile(SAMPLE)).split("\n")) {
    n++;
    if (line === "") continue;
    const e = parseExportLine(line, n);
    if (e.kind === "LogEntry") {
      const c = logCommand(e.value, `line ${n}`);
      if (c !== null) log.push(c);
    } else if (e.kv !== undefined && e.key !== undefined) {
      const expireAt = e.kv.meta?.expireAt;
      state.load(e.key, {
        seq: e.kv.seq,
        data: e.kv.data,
        ...(expireAt === undefined ? {} : { expireAtMs: expireAt * 1000 }),
      });
    } else if (e.key === "LastApplied") {
      lastApplied = lastAppliedIndex(e.value);
    } else if (e.kind === "Sequences" && typeof e.value === "number") {
      state.seq = e.value;
    }
  }
  const sample = buildSampleCluster();
  assert.equal(lastApplied, sample.snapshotIndex);
  assert.ok(sample.snapshotIndex < sample.lastIndex, "the sample has writes after its snapshot");
  assert.ok(log.some((c) => c.index <= lastApplied!), "the log holds entries the snapshot has");
  for (const c of log) if (c.index > lastApplied!) state.apply(c.cmd, c.timeMs);
  assert.deepEqual(state.warnings, []);
  const got = new Map([...state.entries()].map(([k, v]) => [k, { seq: v.seq, data: [...v.data] }]));
  assert.deepEqual(
    got,
    new Map([...sample.finalKv].map(([k, v]) => [k, { ...v, data: [...v.data] }])),
  );
});

Deno.test("MetaState UpsertKV: seq matches, AsIs, Delete; every write takes the next seq", () => {
  const s = new MetaState();
  s.load("a", { seq: 5, data: new Uint8Array([1]) });
  assert.equal(s.seq, 5);
  s.apply(upsert("b", "x", { Exact: 0 }), 1);
  assert.equal(s.get("b")?.seq, 6);
  s.apply(upsert("b", "y", { Exact: 0 }), 1); // b exists: no match, no write
  assert.equal(dataOf(s, "b"), "x");
  s.apply(upsert("b", "z", { GE: 6 }), 1);
  assert.deepEqual([dataOf(s, "b"), s.get("b")?.seq], ["z", 7]);
  s.apply({ UpsertKV: { key: "a", seq: { GE: 1 }, value: "AsIs", value_meta: null } }, 1);
  assert.deepEqual([s.get("a")?.seq, [...s.get("a")!.data]], [8, [1]]);
  s.apply({ UpsertKV: { key: "a", seq: "Any", value: "Delete", value_meta: null } }, 1);
  assert.equal(s.get("a"), undefined);
  assert.equal(s.seq, 8);
});

Deno.test("MetaState Transaction: conditions choose if_then or else_then; Delete, DeleteByPrefix", () => {
  const s = new MetaState();
  s.load("k", { seq: 3, data: new Uint8Array(bytes("v")) });
  s.load("p/1", { seq: 1, data: new Uint8Array() });
  s.load("p/2", { seq: 2, data: new Uint8Array() });
  const txn = (condition: unknown[]) => ({
    Transaction: { condition, if_then: [put("then", "1")], else_then: [put("else", "1")] },
  });
  s.apply(txn([{ key: "k", expected: 0, target: { Seq: 3 } }]), 1);
  assert.equal(dataOf(s, "then"), "1");
  assert.equal(dataOf(s, "else"), undefined);
  s.apply(
    txn([{ key: "k", expected: 0, target: { Seq: 3 } }, {
      key: "zz",
      expected: 1,
      target: { Seq: 0 },
    }]),
    1,
  );
  assert.equal(dataOf(s, "else"), "1", "one failing condition runs else_then");
  // Value and KeysWithPrefix targets, expected as GE (2) and NE (5).
  s.apply({
    Transaction: {
      condition: [
        { key: "k", expected: 0, target: { Value: bytes("v") } },
        { key: "p/", expected: 2, target: { KeysWithPrefix: 2 } },
        { key: "k", expected: 5, target: { Seq: 0 } },
      ],
      if_then: [
        { request: { Delete: { key: "k", match_seq: 99 } } }, // wrong seq: kept
        { request: { DeleteByPrefix: { prefix: "p/" } } },
        { request: { Get: { key: "k" } } },
      ],
      else_then: [],
    },
  }, 1);
  assert.equal(dataOf(s, "k"), "v");
  assert.equal(s.get("p/1"), undefined);
  assert.equal(s.get("p/2"), undefined);
  s.apply({
    Transaction: {
      condition: [],
      if_then: [{ request: { Delete: { key: "k", match_seq: 3 } } }],
      else_then: [],
    },
  }, 1);
  assert.equal(s.get("k"), undefined);
});

Deno.test("MetaState Transaction operations: the first predicate that holds runs, else the condition", () => {
  const s = new MetaState();
  s.load("a", { seq: 1, data: new Uint8Array() });
  s.apply({
    Transaction: {
      operations: [
        {
          predicate: { operator: 0, conditions: [{ key: "a", expected: 0, target: { Seq: 9 } }] },
          operations: [put("first", "1")],
        },
        {
          predicate: {
            operator: 1,
            sub_expressions: [],
            conditions: [
              { key: "a", expected: 0, target: { Seq: 9 } },
              { key: "a", expected: 0, target: { Seq: 1 } },
            ],
          },
          operations: [put("second", "1")],
        },
      ],
      condition: [],
      if_then: [put("then", "1")],
      else_then: [],
    },
  }, 1);
  assert.deepEqual([dataOf(s, "first"), dataOf(s, "second"), dataOf(s, "then")], [
    undefined,
    "1",
    undefined,
  ]);
});

Deno.test("MetaState skips commands that write no key; warns about unknown kinds", () => {
  const s = new MetaState();
  s.apply({ AddNode: { node_id: 1 } }, 1);
  assert.deepEqual(s.warnings, []);
  s.apply({ SomethingNew: { key: "x" } }, 1);
  s.apply({ Transaction: { condition: [], if_then: [{ request: { PutSequential: {} } }] } }, 1);
  assert.equal(s.warnings.length, 2);
  assert.match(s.warnings[0]!, /SomethingNew command was not replayed/);
  assert.match(s.warnings[1]!, /PutSequential was not replayed/);
  assert.throws(() => s.apply({ UpsertKV: { key: 3 } }, 1), SyntaxError);
});

Deno.test("MetaState: a value whose expiry passed is absent for conditions and the result", () => {
  const s = new MetaState();
  s.apply({
    UpsertKV: { key: "n", seq: "Any", value: { Update: [1] }, value_meta: { expire_at: 100 } },
  }, 50_000);
  assert.ok(s.get("n"));
  s.apply(upsert("n", "again", { Exact: 0 }), 200_000); // expired at 100 s: registers again
  assert.equal(dataOf(s, "n"), "again");
});
