import assert from "node:assert/strict";
import { parseExport, parseExportLine, splitLines } from "./meta_export.ts";

const SAMPLE = new URL("../../testdata/sample-cluster/meta-export.jsonl", import.meta.url);

Deno.test("header, raft and state machine entries", () => {
  assert.deepEqual(
    parseExportLine('["header",{"DataHeader":{"key":"header","value":{"version":"V004"}}}]'),
    { tree: "header", kind: "DataHeader", key: "header", value: { version: "V004" } },
  );
  assert.deepEqual(parseExportLine('["raft_log",{"NodeId":1}]'), {
    tree: "raft_log",
    kind: "NodeId",
    value: 1,
  });
  const seq = parseExportLine('["state_machine/0",{"Sequences":{"key":"generic-kv","value":84}}]');
  assert.equal(seq.key, "generic-kv");
  assert.equal(seq.value, 84);
  const node = parseExportLine(
    '["state_machine/0",{"Nodes":{"key":1,"value":{"name":"1"}}}]',
  );
  assert.equal(node.key, "1");
  const expire = parseExportLine(
    '["state_machine/0",{"Expire":{"key":{"time_ms":1,"seq":83},"value":{"seq":1,"key":"k"}}}]',
  );
  assert.equal(expire.kind, "Expire");
  assert.equal(expire.key, undefined);
  assert.deepEqual(expire.value, { seq: 1, key: "k" });
});

Deno.test("GenericKV values with every meta shape", () => {
  const e = parseExportLine(
    '["state_machine/0",{"GenericKV":{"key":"__fd_table/1/t1","value":{"seq":8,"meta":null,"data":[49,50,53]}}}]',
    3,
  );
  assert.equal(e.kind, "GenericKV");
  assert.equal(e.key, "__fd_table/1/t1");
  assert.deepEqual(e.kv, { seq: 8, meta: null, data: new Uint8Array([49, 50, 53]) });
  const empty = parseExportLine(
    '["state_machine/0",{"GenericKV":{"key":"k","value":{"seq":1,"meta":{},"data":[]}}}]',
  );
  assert.deepEqual(empty.kv?.meta, {});
  const full = parseExportLine(
    '["state_machine/0",{"GenericKV":{"key":"k","value":{"seq":1,"meta":{"expire_at":5,"proposed_at_ms":7},"data":[]}}}]',
  );
  assert.deepEqual(full.kv?.meta, { expireAt: 5, proposedAtMs: 7 });
});

Deno.test("malformed lines give a SyntaxError with the line number and no content", () => {
  const bad: [string, RegExp][] = [
    ['["x", {"A":1}', /^meta export line 7 is not valid JSON/],
    ["{}", /line 7 is not a \[tree, entry\] pair/],
    ['["x", 3]', /line 7: the entry must be an object/],
    ['["x", {"A":1,"B":2}]', /line 7: the entry must have exactly one kind key, found 2/],
    ['["s",{"GenericKV":{"key":"k","value":{"seq":-1,"data":[]}}}]', /seq must be/],
    ['["s",{"GenericKV":{"key":"k","value":{"seq":1,"data":[256]}}}]', /bytes \(0 to 255\)/],
    ['["s",{"GenericKV":{"key":"k","value":{"seq":1,"data":"aGk="}}}]', /byte array/],
    ['["s",{"GenericKV":{"key":"k","value":{"seq":1,"meta":3,"data":[]}}}]', /meta must be null/],
    ['["s",{"GenericKV":{"key":7,"value":{"seq":1,"data":[]}}}]', /needs a string key/],
  ];
  for (const [line, re] of bad) {
    assert.throws(() => parseExportLine(line, 7), (e: unknown) => {
      assert.ok(e instanceof SyntaxError);
      assert.match(e.message, re);
      return true;
    });
  }
  assert.throws(
    () => parseExportLine('["s", {"GenericKV": "hunter2-secret"'),
    (e: unknown) => e instanceof SyntaxError && !e.message.includes("hunter2"),
  );
});

Deno.test("splitLines handles chunk boundaries, CRLF and a missing final newline", async () => {
  const enc = new TextEncoder();
  const text = "a\r\nbé\n\nc";
  const bytes = enc.encode(text);
  const chunks = [...bytes].map((b) => new Uint8Array([b])); // split inside the UTF-8 of é too
  const got: string[] = [];
  for await (const l of splitLines(chunks)) got.push(l);
  assert.deepEqual(got, ["a", "bé", "", "c"]);
});

Deno.test("the whole sample export parses, line numbers count blank lines", async () => {
  const file = await Deno.open(SAMPLE);
  const kinds = new Map<string, number>();
  for await (const e of parseExport(splitLines(file.readable))) {
    kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
  }
  assert.equal(kinds.get("DataHeader"), 1);
  assert.equal(kinds.get("LogEntry"), 20); // 2 before the state machine snapshot, 18 after
  assert.equal(kinds.get("Sequences"), 1);
  assert.equal(kinds.get("StateMachineMeta"), 2);
  assert.ok((kinds.get("GenericKV") ?? 0) > 30);
  const it = parseExport(["", '["h",{"A":1}]', "", "oops"]);
  assert.equal((await it.next()).value?.kind, "A");
  await assert.rejects(it.next(), /meta export line 4 is not valid JSON/);
});
