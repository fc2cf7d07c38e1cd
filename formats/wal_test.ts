import assert from "node:assert/strict";
import {
  controlFileSystemId,
  decodeWalRecord,
  encodeWalBody,
  encodeWalRecord,
  formatLsn,
  isSystemId,
  openWalRecordFile,
  parseSegmentHeader,
  parseWalKey,
  parseWalName,
  segmentStartLsn,
  type WalRecord,
  walRecordEnvelope,
} from "./wal.ts";
import { makeSegment, TEST_SYSTEM_ID } from "../testing/wal_segment.ts";

const record = (over: Partial<WalRecord> = {}): WalRecord => ({
  name: "000000010000000000000003",
  systemId: TEST_SYSTEM_ID,
  size: 16 << 20,
  sha256: new Uint8Array(32).fill(7),
  blocks: [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)],
  pushTimeMs: 1_764_619_200_123,
  timeline: 1,
  startLsn: 3n << 24n,
  segmentSize: 16 << 20,
  toolVersion: "0.1.0",
  host: "db-1",
  ...over,
});

Deno.test("parseWalName reads segments, partial segments, history and backup files", () => {
  assert.deepEqual(parseWalName("0000000200000001000000FE"), {
    name: "0000000200000001000000FE",
    type: "segment",
    timeline: 2,
    log: 1,
    seg: 0xfe,
    offset: 0,
  });
  assert.equal(parseWalName("000000010000000000000004.partial")?.type, "partial");
  assert.equal(parseWalName("0000000A.history")?.timeline, 10);
  const b = parseWalName("000000010000000000000002.00000028.backup");
  assert.equal(b?.type, "backup");
  assert.equal(b?.offset, 0x28);
});

Deno.test("parseWalName refuses anything else", () => {
  for (
    const bad of [
      "",
      "RECOVERYXLOG",
      "00000001000000000000000a", // PostgreSQL writes upper case
      "00000001000000000000000",
      "0000000100000000000000001",
      "000000010000000000000001.history",
      "00000001.partial",
      "000000010000000000000002.backup",
      "../000000010000000000000001",
      "000000010000000000000001/",
    ]
  ) assert.equal(parseWalName(bad), null, bad);
});

Deno.test("isSystemId takes 1 to 2^64-1 in decimal without leading zeros", () => {
  assert.ok(isSystemId("1"));
  assert.ok(isSystemId(TEST_SYSTEM_ID));
  assert.ok(isSystemId("18446744073709551615"));
  for (const bad of ["", "0", "01", "18446744073709551616", "-1", "1e5", "12a"]) {
    assert.equal(isSystemId(bad), false, bad);
  }
});

Deno.test("parseWalKey splits a record name into system identifier and WAL file name", () => {
  const k = parseWalKey(`${TEST_SYSTEM_ID}/00000002.history`);
  assert.equal(k?.systemId, TEST_SYSTEM_ID);
  assert.equal(k?.name.type, "history");
  assert.equal(parseWalKey("000000010000000000000001"), null);
  assert.equal(parseWalKey(`${TEST_SYSTEM_ID}/x/000000010000000000000001`), null);
});

Deno.test("segmentStartLsn counts segments per log file by the segment size", () => {
  const n = parseWalName("000000010000000100000002")!;
  assert.equal(segmentStartLsn(n, 16 << 20), (1n << 32n) + (2n << 24n));
  assert.equal(formatLsn(segmentStartLsn(n, 16 << 20)), "1/2000000");
  assert.equal(segmentStartLsn(parseWalName("000000010000000100000002")!, 1 << 30), 0x1_8000_0000n);
  assert.throws(
    () => segmentStartLsn(parseWalName("000000010000000000000100")!, 16 << 20),
    RangeError,
  );
  assert.throws(() => segmentStartLsn(n, 3 << 20), RangeError);
});

Deno.test("parseSegmentHeader reads the long page header of a segment's first page", () => {
  const { data } = makeSegment({ segno: 5, timeline: 3, segmentSize: 1 << 20 });
  const h = parseSegmentHeader(data);
  assert.equal(h.magic, 0xd110);
  assert.equal(h.timeline, 3);
  assert.equal(h.pageAddress, 5n << 20n);
  assert.equal(h.systemId, TEST_SYSTEM_ID);
  assert.equal(h.segmentSize, 1 << 20);
  assert.equal(h.blockSize, 8192);
});

Deno.test("parseSegmentHeader refuses a short page or one without a long header", () => {
  assert.throws(() => parseSegmentHeader(new Uint8Array(39)), SyntaxError);
  const { data } = makeSegment({ segmentSize: 1 << 20 });
  data[2] = 0; // xlp_info without XLP_LONG_HEADER
  assert.throws(() => parseSegmentHeader(data), /no long header/);
});

Deno.test("controlFileSystemId reads the first 8 bytes little-endian", () => {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setBigUint64(0, BigInt(TEST_SYSTEM_ID), true);
  assert.equal(controlFileSystemId(b), TEST_SYSTEM_ID);
  assert.throws(() => controlFileSystemId(new Uint8Array(7)), SyntaxError);
});

Deno.test("encodeWalRecord and decodeWalRecord round-trip, 64-bit values exact", () => {
  const r = record({ startLsn: (1n << 64n) - 1n });
  const bytes = encodeWalRecord(r);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x42, 0x53, 0x57, 0x4c, 1, 0, 0, 0]);
  assert.deepEqual(decodeWalRecord(bytes), r);
});

Deno.test("decodeWalRecord detects truncation and garbling anywhere", () => {
  const bytes = encodeWalRecord(record());
  for (let n = 0; n < bytes.length; n += 7) {
    assert.throws(() => decodeWalRecord(bytes.subarray(0, n)), SyntaxError, `truncated to ${n}`);
  }
  for (let i = 0; i < bytes.length; i += 5) {
    const g = bytes.slice();
    g[i] = g[i]! ^ 0x40;
    assert.throws(() => decodeWalRecord(g), SyntaxError, `byte ${i} garbled`);
  }
});

Deno.test("decodeWalRecord refuses a newer major version with a clear message", () => {
  const bytes = encodeWalRecord(record());
  bytes[4] = 3;
  assert.throws(() => decodeWalRecord(bytes), /newer than this bendsave reads/);
});

Deno.test("decodeWalRecord refuses a sealed record (version 2) instead of decoding its body", () => {
  const bytes = walRecordEnvelope(2, encodeWalBody(record()));
  assert.deepEqual([...bytes.subarray(0, 8)], [0x42, 0x53, 0x57, 0x4c, 2, 0, 0, 0]);
  assert.throws(() => decodeWalRecord(bytes), /sealed record of an encrypted repository/);
});

Deno.test("openWalRecordFile checks a sealed record's envelope without the key", () => {
  const body = crypto.getRandomValues(new Uint8Array(100)); // stands for the sealed WalFile
  const bytes = walRecordEnvelope(2, body);
  const env = openWalRecordFile(bytes);
  assert.equal(env.version, 2);
  assert.deepEqual(env.body, body);
  const g = bytes.slice();
  g[50] = g[50]! ^ 1;
  assert.throws(() => openWalRecordFile(g), /checksum mismatch/);
});
