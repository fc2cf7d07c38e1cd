import assert from "node:assert/strict";
import { encode } from "@msgpack/msgpack";
import { zstdCompressSync } from "node:zlib";
import { buildSampleCluster } from "../../testdata/make_sample_cluster.ts";
import { decodeTableSnapshot, parseTimestampUs } from "./table_snapshot.ts";

const SAMPLE = new URL("../../testdata/sample-cluster/storage/", import.meta.url);
const te = new TextEncoder();
const ID = "0195a50c-4685-7cd0-b2fe-f4fe103c42cb";
const PREV = "0195a50c-4685-7cd0-b2fe-f4fe103c42ca";

function u64le(n: number): number[] {
  const out: number[] = [];
  for (let i = 0, v = n; i < 8; i++, v = Math.floor(v / 256)) out.push(v % 256);
  return out;
}

function idBytes(id: string): Uint8Array {
  const h = id.replaceAll("-", "");
  return new Uint8Array(h.match(/../g)!.map((x) => parseInt(x, 16)));
}

function binary(version: number, encoding: number, compression: number, body: Uint8Array) {
  return new Uint8Array([...u64le(version), encoding, compression, ...u64le(body.length), ...body]);
}

Deno.test("decodeTableSnapshot reads every snapshot of the sample cluster (v4, zstd MessagePack)", async () => {
  const sample = buildSampleCluster();
  let n = 0;
  for (const t of sample.tables) {
    for (const s of t.snapshots) {
      const info = decodeTableSnapshot(await Deno.readFile(new URL(s.location, SAMPLE)));
      assert.deepEqual(info, {
        formatVersion: 4,
        id: s.id,
        timestamp: s.timestamp,
        timestampUs: s.timestampUs,
        prev: s.prevId === "" ? null : { id: s.prevId, formatVersion: 4 },
        rowCount: s.rowCount,
        segments: s.segments,
        tableStatisticsLocation: s.objects.find((o) => o.includes("/_ts/")) ?? null,
      });
      n++;
    }
  }
  assert.ok(n >= 8, `the sample has ${n} snapshots`);
});

Deno.test("decodeTableSnapshot reads JSON snapshots: v0, v1, v2, and a v5 with a JSON body", () => {
  const v0 = {
    snapshot_id: ID,
    prev_snapshot_id: PREV,
    schema: {},
    summary: { row_count: 7, block_count: 1 },
    segments: ["1/2/_sg/a.json"],
  };
  assert.deepEqual(decodeTableSnapshot(te.encode(JSON.stringify(v0))), {
    formatVersion: 0,
    id: ID,
    timestamp: null,
    timestampUs: null,
    prev: { id: PREV, formatVersion: 0 },
    rowCount: 7,
    segments: ["1/2/_sg/a.json"],
    tableStatisticsLocation: null,
  });
  const v2 = {
    format_version: 2,
    snapshot_id: ID,
    timestamp: "2022-11-01T08:20:38.123456Z",
    prev_snapshot_id: [PREV, 1],
    schema: {},
    summary: { row_count: 9 },
    segments: [["1/2/_sg/b_v2.json", 2], ["1/2/_sg/a_v1.json", 1]],
    cluster_key_meta: null,
    table_statistics_location: "1/2/_ts/x_ts_v2.json",
  };
  const got = decodeTableSnapshot(te.encode(" \n" + JSON.stringify(v2)));
  assert.equal(got.formatVersion, 2);
  assert.equal(got.timestampUs, Date.UTC(2022, 10, 1, 8, 20, 38) * 1000 + 123456);
  assert.deepEqual(got.prev, { id: PREV, formatVersion: 1 });
  assert.deepEqual(got.segments, ["1/2/_sg/b_v2.json", "1/2/_sg/a_v1.json"]);
  assert.equal(got.tableStatisticsLocation, "1/2/_ts/x_ts_v2.json");
  const v5 = binary(5, 3, 0, te.encode(JSON.stringify({ ...v2, format_version: 5 })));
  assert.equal(decodeTableSnapshot(v5).formatVersion, 5);
});

Deno.test("decodeTableSnapshot reads a v5 MessagePack snapshot and the leading fields of a v3 bincode one", () => {
  const body = encode({
    format_version: 5,
    snapshot_id: idBytes(ID),
    timestamp: "2025-11-09T20:00:00.005401Z",
    prev_table_seq: 12,
    prev_snapshot_id: [idBytes(PREV), 4],
    schema: { fields: [], metadata: {}, next_column_id: 0 },
    summary: { row_count: 66740, col_stats: new Map([[0, { min: 1 }]]) },
    segments: [["8/32/_sg/x_v4.mpk", 4]],
    cluster_key_meta: null,
    table_statistics_location: null,
    least_visible_timestamp: "2025-11-08T20:00:00Z",
  });
  const v5 = decodeTableSnapshot(binary(5, 2, 1, new Uint8Array(zstdCompressSync(body))));
  assert.equal(v5.id, ID);
  assert.equal(v5.rowCount, 66740);
  assert.deepEqual(v5.segments, ["8/32/_sg/x_v4.mpk"]);
  // v3: bincode: version, id (u64 length + 16 bytes), Some(timestamp), Some((id, version)), ...
  const ts = te.encode("2023-05-01T10:00:00.5Z");
  const bincode = new Uint8Array([
    ...u64le(3),
    ...u64le(16),
    ...idBytes(ID),
    1,
    ...u64le(ts.length),
    ...ts,
    1,
    ...u64le(16),
    ...idBytes(PREV),
    ...u64le(2),
    9,
    9,
    9, // the schema and the rest are not read
  ]);
  const v3 = decodeTableSnapshot(binary(3, 1, 0, bincode));
  assert.deepEqual(v3, {
    formatVersion: 3,
    id: ID,
    timestamp: "2023-05-01T10:00:00.5Z",
    timestampUs: Date.UTC(2023, 4, 1, 10) * 1000 + 500_000,
    prev: { id: PREV, formatVersion: 2 },
    rowCount: null,
    segments: null,
    tableStatisticsLocation: null,
  });
});

Deno.test("decodeTableSnapshot refuses damaged or unknown snapshots with a reason", () => {
  assert.throws(() => decodeTableSnapshot(te.encode("{not json")), /neither valid JSON/);
  assert.throws(() => decodeTableSnapshot(binary(9, 2, 1, new Uint8Array(4))), /version 9/);
  assert.throws(() => decodeTableSnapshot(binary(4, 2, 1, new Uint8Array([1, 2, 3]))), /zstd/);
  assert.throws(() => decodeTableSnapshot(binary(4, 2, 2, new Uint8Array(3))), /snappy/);
  assert.throws(() => decodeTableSnapshot(binary(4, 7, 0, new Uint8Array(3))), /encoding 7/);
  assert.throws(() => decodeTableSnapshot(new Uint8Array([4, 0, 0])), /truncated/);
  assert.throws(
    () => decodeTableSnapshot(binary(4, 2, 0, encode({ snapshot_id: "x", segments: [] }))),
    /not a UUID/,
  );
});

Deno.test("parseTimestampUs reads chrono's forms", () => {
  assert.equal(parseTimestampUs("1970-01-01T00:00:01Z"), 1_000_000);
  assert.equal(parseTimestampUs("1970-01-01T00:00:01.000002Z"), 1_000_002);
  assert.equal(parseTimestampUs("1970-01-01T01:00:00.123456789+01:00"), 123456);
  assert.throws(() => parseTimestampUs("yesterday"), SyntaxError);
});
