import assert from "node:assert/strict";
import { formatLsn, parseLsn, parseRecoveryTarget, parseRecoveryTime } from "./pg_target.ts";

Deno.test("parseRecoveryTime reads RFC 3339 and timestamptz output to the microsecond", () => {
  const cases: [string, string][] = [
    ["2026-12-01T14:02:00Z", "2026-12-01 14:02:00.000000+00"],
    ["2026-12-01T16:02:00.5+02:00", "2026-12-01 14:02:00.500000+00"],
    ["2026-12-01 14:02:00.123456+00", "2026-12-01 14:02:00.123456+00"],
    ["2026-12-01 16:02:00+02", "2026-12-01 14:02:00.000000+00"],
    ["2026-12-01 19:32:00.000001+05:30", "2026-12-01 14:02:00.000001+00"],
    ["2026-12-01 09:02:00-05", "2026-12-01 14:02:00.000000+00"],
    ["2027-01-01 00:30:00+01", "2026-12-31 23:30:00.000000+00"],
  ];
  for (const [input, text] of cases) assert.equal(parseRecoveryTime(input).text, text, input);
  const a = parseRecoveryTime("2026-12-01 14:02:00.000001+00").micros;
  const b = parseRecoveryTime("2026-12-01T14:02:00Z").micros;
  assert.equal(a - b, 1n);
  assert.equal(b, BigInt(Date.UTC(2026, 11, 1, 14, 2, 0)) * 1000n);
});

Deno.test("parseRecoveryTime refuses a time without a zone, or impossible numbers, quoting it", () => {
  for (
    const bad of [
      "2026-12-01 14:02:00",
      "yesterday",
      "2026-02-30T00:00:00Z",
      "2026-12-01T24:00:00Z",
    ]
  ) {
    assert.throws(() => parseRecoveryTime(bad), (e: Error) => e.message.includes(`"${bad}"`), bad);
  }
});

Deno.test("parseLsn and formatLsn round-trip PostgreSQL's X/Y form", () => {
  assert.equal(parseLsn("0/3000028"), 0x3000028n);
  assert.equal(parseLsn("1/2a"), 0x10000002an);
  assert.equal(formatLsn(0x10000002an), "1/2A");
  assert.equal(formatLsn(parseLsn("16/B374D848")), "16/B374D848");
  assert.throws(() => parseLsn("0x3000028"), /not an LSN/);
});

Deno.test("parseRecoveryTarget takes latest, a time or an LSN, not two", () => {
  assert.deepEqual(parseRecoveryTarget({}), { kind: "latest" });
  assert.deepEqual(parseRecoveryTarget({ asOf: "LATEST" }), { kind: "latest" });
  assert.equal(parseRecoveryTarget({ asOf: "2026-12-01T14:02:00Z" }).kind, "time");
  assert.deepEqual(parseRecoveryTarget({ targetLsn: "0/3000028" }), {
    kind: "lsn",
    lsn: 0x3000028n,
    text: "0/3000028",
  });
  assert.throws(() => parseRecoveryTarget({ asOf: "latest", targetLsn: "0/1" }), /not both/);
});
