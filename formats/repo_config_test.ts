import assert from "node:assert/strict";
import { DEFAULT_FASTCDC, DEFAULT_FIXED } from "./chunker.ts";
import { DEFAULT_COMPRESSION } from "./codec.ts";
import {
  CONFIG_FORMAT,
  DEFAULT_PACK_SIZE,
  encodeRepoConfig,
  NewerFormatError,
  newRepoConfig,
  parseRepoConfig,
  type RepoConfig,
} from "./repo_config.ts";
import { FORMAT_MINOR, FORMAT_VERSION, NEWEST_READABLE_FORMAT } from "./version.ts";

const ID = "0123456789abcdef".repeat(4);
const NOW = new Date(Date.UTC(2024, 4, 6, 7, 8, 9, 10));

function sample(): RepoConfig {
  return newRepoConfig(ID, {
    chunker: DEFAULT_FASTCDC,
    compression: DEFAULT_COMPRESSION,
    packSize: DEFAULT_PACK_SIZE,
    now: NOW,
  });
}

/** Config JSON bytes with some fields replaced (undefined removes a field). */
function edited(changes: Record<string, unknown>): Uint8Array {
  const j: Record<string, unknown> = { ...sample(), ...changes };
  for (const [k, v] of Object.entries(changes)) if (v === undefined) delete j[k];
  return new TextEncoder().encode(JSON.stringify(j));
}

function throwsSyntax(bytes: Uint8Array, what: string): void {
  assert.throws(() => parseRepoConfig(bytes), SyntaxError, what);
}

Deno.test("newRepoConfig fills in the format marker, versions and creation time", () => {
  const c = sample();
  assert.equal(c.format, CONFIG_FORMAT);
  assert.equal(c.format, "bendsave-repository");
  assert.equal(c.version, FORMAT_VERSION);
  assert.equal(c.minor, FORMAT_MINOR);
  assert.equal(c.created, "2024-05-06T07:08:09.010Z");
  assert.equal(c.id, ID);
});

Deno.test("parseRepoConfig round trips an encoded config", () => {
  for (const chunker of [DEFAULT_FASTCDC, DEFAULT_FIXED, { ...DEFAULT_FASTCDC, seed: 42 }]) {
    for (
      const compression of [DEFAULT_COMPRESSION, { codec: "none" as const, level: 0, minSaving: 0 }]
    ) {
      const c = newRepoConfig(ID, { chunker, compression, packSize: 1024 * 1024, now: NOW });
      assert.deepEqual(parseRepoConfig(encodeRepoConfig(c)), c);
    }
  }
});

Deno.test("encodeRepoConfig writes pretty JSON ending in a newline", () => {
  const text = new TextDecoder().decode(encodeRepoConfig(sample()));
  assert.ok(text.endsWith("}\n"));
  assert.ok(text.includes('\n  "format": "bendsave-repository",\n'), text);
  assert.deepEqual(JSON.parse(text), sample());
});

Deno.test("parseRepoConfig ignores unknown fields and defaults a missing minor to 0", () => {
  const c = parseRepoConfig(edited({ minor: undefined, addedLater: { x: 1 } }));
  assert.equal(c.minor, 0);
  assert.deepEqual({ ...c, minor: FORMAT_MINOR }, sample());
});

Deno.test("parseRepoConfig throws NewerFormatError for a newer major version", () => {
  for (const version of [NEWEST_READABLE_FORMAT + 1, 99]) {
    assert.throws(() => parseRepoConfig(edited({ version })), (e: unknown) => {
      assert.ok(e instanceof NewerFormatError);
      assert.equal(e.version, version);
      assert.ok(e.message.includes(String(version)), e.message);
      return true;
    });
  }
});

Deno.test("parseRepoConfig throws SyntaxError on bytes that are not JSON", () => {
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["text", new TextEncoder().encode("not json")],
    ["truncated", encodeRepoConfig(sample()).subarray(0, 40)],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])],
  ];
  for (const [what, bytes] of cases) throwsSyntax(bytes, what);
});

Deno.test("parseRepoConfig throws SyntaxError on JSON that is not a bendsave config", () => {
  for (const text of ["null", "[]", "42", '"bendsave-repository"', "{}"]) {
    throwsSyntax(new TextEncoder().encode(text), text);
  }
  throwsSyntax(edited({ format: "restic" }), "other format");
  throwsSyntax(edited({ format: undefined }), "no format");
});

Deno.test("parseRepoConfig throws SyntaxError on a missing or invalid version", () => {
  for (const version of [undefined, "1", 0, -1, 0.5]) {
    throwsSyntax(edited({ version }), String(version));
  }
});

Deno.test("parseRepoConfig throws SyntaxError on a missing or invalid id", () => {
  for (const id of [undefined, "", ID.toUpperCase(), ID.slice(1), ID + "0", 42, "g".repeat(64)]) {
    throwsSyntax(edited({ id }), String(id));
  }
});

Deno.test("parseRepoConfig throws SyntaxError on an invalid pack size", () => {
  const MiB = 1024 * 1024;
  for (
    const packSize of [
      undefined,
      null,
      "33554432",
      0,
      MiB - 1,
      1024 * MiB + 1,
      1.5 * MiB + 0.5,
      -MiB,
    ]
  ) {
    throwsSyntax(edited({ packSize }), String(packSize));
  }
  for (const packSize of [MiB, 1024 * MiB]) {
    assert.equal(parseRepoConfig(edited({ packSize })).packSize, packSize);
  }
});

Deno.test("parseRepoConfig throws SyntaxError on an invalid chunker", () => {
  const bad = [
    undefined,
    null,
    "fixed",
    { kind: "rolling", size: 1024 },
    { kind: "fixed" },
    { kind: "fixed", size: 10 },
    { kind: "fixed", size: 1024, extra: 1 },
    { kind: "fastcdc", min: 4096, avg: 1000, max: 8192 },
  ];
  for (const chunker of bad) throwsSyntax(edited({ chunker }), JSON.stringify(chunker));
});

Deno.test("parseRepoConfig throws SyntaxError on missing or unknown compression", () => {
  for (const compression of [undefined, null, { codec: "gzip", level: 3, minSaving: 0.03 }]) {
    throwsSyntax(edited({ compression }), JSON.stringify(compression));
  }
});

Deno.test("parseRepoConfig refuses exactly what FORMAT.md section 5's reader check column says", () => {
  const damaged = [
    { version: 1.5 },
    { version: 0 },
    { version: "1" },
    { compression: "zstd" },
    { compression: { ...DEFAULT_COMPRESSION, codec: "ZSTD" } },
    { compression: { ...DEFAULT_COMPRESSION, level: 2.5 } },
    { compression: { ...DEFAULT_COMPRESSION, level: 23 } },
    { compression: { ...DEFAULT_COMPRESSION, minSaving: 1 } },
    { compression: { ...DEFAULT_COMPRESSION, minSaving: -0.1 } },
    { packSize: 1024 * 1024 - 1 },
    { chunker: { ...DEFAULT_FIXED, extra: 1 } },
    { id: ID.toUpperCase() },
    { version: 2 }, // format 2 is encrypted: it needs an encryption object
    { version: 2, encryption: { aead: "chacha", idMac: "hmac-sha256", kdf: { name: "argon2id" } } },
  ];
  for (const change of damaged) {
    assert.throws(() => parseRepoConfig(edited(change)), SyntaxError, JSON.stringify(change));
  }
  assert.throws(() => parseRepoConfig(edited({ version: 3 })), NewerFormatError);
  // Not checked: minor, created, unknown top-level fields.
  for (const change of [{ minor: "x" }, { created: 5 }, { future: true }]) {
    parseRepoConfig(edited(change));
  }
});
