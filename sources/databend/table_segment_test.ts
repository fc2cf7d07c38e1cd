import assert from "node:assert/strict";
import { encode } from "@msgpack/msgpack";
import { buildSampleCluster } from "../../testdata/make_sample_cluster.ts";
import { decodeSegmentObjects } from "./table_segment.ts";

const SAMPLE = new URL("../../testdata/sample-cluster/storage/", import.meta.url);
const te = new TextEncoder();

Deno.test("decodeSegmentObjects lists the blocks and bloom indexes of every sample segment", async () => {
  for (const t of buildSampleCluster().tables) {
    const last = t.snapshots.at(-1);
    if (last === undefined) continue;
    const got = new Set<string>([last.location, ...last.segments]);
    for (const seg of last.segments) {
      for (const o of decodeSegmentObjects(await Deno.readFile(new URL(seg, SAMPLE)))) got.add(o);
    }
    assert.deepEqual([...got].sort(), last.objects.filter((o) => !o.includes("/_ts/")), t.name);
  }
});

Deno.test("decodeSegmentObjects reads JSON segments and nested index locations; refuses bincode", () => {
  const json = {
    format_version: 1,
    blocks: [
      { location: ["1/2/_b/a_v0.parquet", 0], bloom_filter_index_location: null },
      { location: "1/2/_b/b.parquet", virtual_block_meta: { virtual_location: ["1/2/_vb/b", 0] } },
    ],
    summary: {},
  };
  assert.deepEqual(decodeSegmentObjects(te.encode(JSON.stringify(json))), [
    "1/2/_b/a_v0.parquet",
    "1/2/_b/b.parquet",
    "1/2/_vb/b",
  ]);
  const head = (enc: number, part: Uint8Array) =>
    new Uint8Array([
      4,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      enc,
      0,
      part.length,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...part,
    ]);
  assert.deepEqual(decodeSegmentObjects(head(2, encode([{ location: ["x", 2] }]))), ["x"]);
  assert.throws(() => decodeSegmentObjects(head(1, new Uint8Array(3))), /bincode/);
  assert.throws(() => decodeSegmentObjects(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0])), /version 9/);
});
