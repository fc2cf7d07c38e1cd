import assert from "node:assert/strict";
import { planWalExpiry } from "./wal_expiry.ts";
import type { ManifestRecord } from "./repository.ts";
import type { WalRecord } from "../formats/wal.ts";

const SEG = 16 * 1024 * 1024;

function wal(systemId: string, name: string): WalRecord {
  const segment = /^[0-9A-F]{24}$/.test(name);
  return {
    name,
    systemId,
    size: segment ? SEG : 100,
    sha256: new Uint8Array(32),
    blocks: [],
    pushTimeMs: 0,
    timeline: 1,
    startLsn: 0n,
    segmentSize: segment ? SEG : 0,
    toolVersion: "test",
    host: "h",
  };
}

function base(systemId: string, startLsn: string): ManifestRecord {
  return {
    name: `b-${startLsn}`,
    manifest: {
      source: {
        type: "postgresql",
        key: `postgresql:${systemId}:/data`,
        description: "",
        settings: {
          "pg.system_identifier": systemId,
          "pg.start_lsn": startLsn,
          "pg.wal_segment_size": String(SEG),
        },
      },
    },
  } as unknown as ManifestRecord;
}

Deno.test("planWalExpiry deletes only WAL that ends before the oldest kept base backup starts", () => {
  const records = [
    wal("7", "000000010000000000000001"),
    wal("7", "000000010000000000000002"),
    wal("7", "000000010000000000000002.00000028.backup"),
    wal("7", "000000010000000000000003"),
    wal("7", "00000002.history"),
    wal("7", "000000020000000000000004"),
    wal("9", "000000010000000000000001"), // another system with no kept base backup
  ];
  // The oldest kept backup starts inside segment 3 (0/3000028).
  const plan = planWalExpiry(records, [base("7", "0/3000028"), base("7", "0/5000060")]);
  assert.deepEqual(plan.remove.map((r) => `${r.systemId}/${r.name}`), [
    "7/000000010000000000000001",
    "7/000000010000000000000002",
    "7/000000010000000000000002.00000028.backup",
  ]);
  assert.equal(plan.keep.length, 4);
  // A backup that starts exactly at a segment boundary needs that segment, not the one before.
  const edge = planWalExpiry(records, [base("7", "0/3000000")]);
  assert.ok(edge.keep.some((r) => r.name === "000000010000000000000003"));
  assert.ok(edge.remove.some((r) => r.name === "000000010000000000000002"));
  // No kept base backup of a system: all of its WAL stays.
  assert.deepEqual(planWalExpiry(records, []).remove, []);
});
