import assert from "node:assert/strict";
import { sha256 } from "./hash.ts";
import {
  decodeManifest,
  emptyStats,
  encodeManifest,
  encodeManifestFile,
  isManifestName,
  isReadableVersion,
  type Manifest,
  manifestName,
  type ManifestStats,
  NewerManifestError,
  openManifestFile,
  sameBackup,
} from "./manifest.ts";
import { FORMAT_VERSION, NEWEST_READABLE_FORMAT } from "./version.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function stats(base: number): ManifestStats {
  const s = emptyStats();
  (Object.keys(s) as (keyof ManifestStats)[]).forEach((k, i) => (s[k] = base + i));
  return s;
}

/** A manifest with every field set, including 64-bit values above 2^32. */
function fullManifest(): Manifest {
  return {
    formatVersion: 1,
    formatMinor: 3,
    timeMs: Date.UTC(2024, 1, 29, 23, 59, 58, 123),
    endTimeMs: Date.UTC(2024, 2, 1, 0, 10, 0, 5),
    kind: "incremental",
    parentName: "20240228_235958.manifest",
    parentId: sha256(enc("parent")),
    source: {
      type: "databend",
      key: "host-a:/etc/databend/query.toml",
      description: "Databend cluster prod (s3://data/root)",
      settings: { storage: "s3", bucket: "data", root: "/root", "ünï": "cödé" },
    },
    parts: [
      {
        name: "meta",
        kind: "stream",
        root: sha256(enc("meta root")),
        stats: stats(1),
        chunker: { kind: "fixed", size: 1024 * 1024 },
      },
      {
        name: "storage",
        kind: "tree",
        root: sha256(enc("storage root")),
        stats: stats(2 ** 33),
        chunker: {
          kind: "fastcdc",
          min: 512 * 1024,
          avg: 2 * 1024 * 1024,
          max: 8 * 1024 * 1024,
          seed: 7,
        },
      },
      {
        name: "files",
        kind: "tree",
        root: sha256(enc("files root")),
        stats: emptyStats(),
        chunker: null,
      },
    ],
    stats: stats(2 ** 40),
    toolVersion: "0.1.0",
    host: "backup-host.example",
    incomplete: true,
    warnings: ["could not read /data/locked: permission denied", "second warning ✓"],
    labels: { env: "prod", ticket: "OPS-42", empty: "" },
    logSegments: [
      {
        name: "seg-0001",
        startTimeMs: Date.UTC(2024, 1, 29),
        endTimeMs: Date.UTC(2024, 1, 29, 12),
        startPosition: "0/16B3748",
        endPosition: "0/17000000",
        root: sha256(enc("seg root")),
      },
    ],
    catalog: {
      tenant: "default",
      clusterId: "prod-1",
      databases: [
        {
          name: "sales",
          id: 2 ** 35 + 1,
          tables: [
            { name: "orders", id: 17, storagePrefix: "1/17/" },
            { name: "items", id: 2 ** 40, storagePrefix: "1/1099511627776/" },
          ],
        },
        { name: "empty_db", id: 3, tables: [] },
      ],
    },
  };
}

/** The smallest manifest: a full backup with no parent, parts, labels or catalog. */
function minimalManifest(): Manifest {
  return {
    formatVersion: 1,
    formatMinor: 0,
    timeMs: 1,
    endTimeMs: 0,
    kind: "full",
    parentName: null,
    parentId: null,
    source: { type: "dir", key: "", description: "", settings: {} },
    parts: [],
    stats: emptyStats(),
    toolVersion: "",
    host: "",
    incomplete: false,
    warnings: [],
    labels: {},
    logSegments: [],
    catalog: null,
  };
}

/** Wraps a protobuf body in a manifest envelope with a correct header and checksum. */
function wrap(body: Uint8Array, version = 1): Uint8Array {
  const head = concat([enc("BSMF"), new Uint8Array([version, 0, 0, 0]), body]);
  return concat([head, sha256(head)]);
}

/** A protobuf varint. */
function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return new Uint8Array(out);
}

Deno.test("decodeManifest round trips a manifest with every field set", () => {
  const m = fullManifest();
  const file = encodeManifestFile(m);
  const env = openManifestFile(file);
  assert.equal(env.version, 1);
  assert.deepEqual(decodeManifest(env.body), m);
});

Deno.test("decodeManifest round trips a minimal full backup with null parent and catalog", () => {
  const m = minimalManifest();
  assert.deepEqual(decodeManifest(openManifestFile(encodeManifestFile(m)).body), m);
});

Deno.test("encodeManifestFile wraps the body in BSMF, the version, and a SHA-256", () => {
  const m = fullManifest();
  const body = new Uint8Array(encodeManifest(m));
  const file = encodeManifestFile(m);
  assert.equal(file.length, 8 + body.length + 32);
  assert.deepEqual(file.subarray(0, 8), new Uint8Array([0x42, 0x53, 0x4d, 0x46, 1, 0, 0, 0]));
  assert.deepEqual(file.subarray(8, 8 + body.length), body);
  assert.deepEqual(file.subarray(8 + body.length), sha256(file.subarray(0, 8 + body.length)));
  assert.deepEqual(encodeManifestFile(m), file, "encoding is deterministic");
});

Deno.test("openManifestFile reports the major version from the header", () => {
  const body = encodeManifest(fullManifest());
  assert.equal(openManifestFile(wrap(body, 1)).version, 1);
});

Deno.test("openManifestFile refuses a newer major as newer before checking its checksum", () => {
  const body = encodeManifest(fullManifest());
  // A newer major may compute its checksum differently (here: none that major 2 knows).
  const newer = wrap(body, 3);
  newer[newer.length - 1] = newer[newer.length - 1]! ^ 0xff;
  for (const file of [wrap(body, 3), newer, new Uint8Array([0x42, 0x53, 0x4d, 0x46, 7, 0, 0, 0])]) {
    assert.throws(() => openManifestFile(file), (e: unknown) => {
      assert.ok(e instanceof NewerManifestError, String(e));
      assert.ok(e.version >= 3);
      return true;
    });
  }
});

Deno.test("openManifestFile throws SyntaxError on every truncation of a manifest file", () => {
  const file = encodeManifestFile(fullManifest());
  for (let n = 0; n < file.length; n++) {
    assert.throws(() => openManifestFile(file.subarray(0, n)), SyntaxError, `first ${n} bytes`);
  }
});

Deno.test("openManifestFile throws SyntaxError on a file with any one byte flipped", () => {
  const file = encodeManifestFile(fullManifest());
  for (let pos = 0; pos < file.length; pos++) {
    const bad = file.slice();
    bad[pos] = bad[pos]! ^ 0x04;
    // Byte 4 (the major version, 1 -> 5) is checked first: newer, not garbled.
    const expected = pos === 4 ? NewerManifestError : SyntaxError;
    assert.throws(() => openManifestFile(bad), expected, `byte ${pos}`);
  }
});

Deno.test("openManifestFile throws SyntaxError on a file with bytes appended", () => {
  const file = encodeManifestFile(fullManifest());
  assert.throws(() => openManifestFile(concat([file, new Uint8Array([0])])), SyntaxError);
});

Deno.test("decodeManifest throws SyntaxError on a body that lacks version, time or source", () => {
  assert.throws(() => decodeManifest(new Uint8Array(0)), SyntaxError);
  const m = fullManifest();
  assert.throws(() => decodeManifest(encodeManifest({ ...m, formatVersion: 0 })), SyntaxError);
  assert.throws(() => decodeManifest(encodeManifest({ ...m, timeMs: 0 })), SyntaxError);
});

Deno.test("decodeManifest throws SyntaxError on a truncated or garbled body", () => {
  const body = encodeManifest(fullManifest());
  for (const n of [1, 2, 5, body.length >> 1, body.length - 1]) {
    assert.throws(() => decodeManifest(body.subarray(0, n)), SyntaxError, `first ${n} bytes`);
  }
  assert.throws(() => decodeManifest(new Uint8Array([0xff, 0xff, 0xff])), SyntaxError);
});

Deno.test("decodeManifest throws SyntaxError on a part whose root is not a 32-byte id", () => {
  const m = fullManifest();
  const bad = { ...m, parts: [{ ...m.parts[0]!, root: new Uint8Array(31) }] };
  assert.throws(() => decodeManifest(encodeManifest(bad)), {
    name: "SyntaxError",
    message: /"meta"/,
  });
});

Deno.test("decodeManifest ignores unknown fields from a newer minor version", () => {
  const m = fullManifest();
  const body = concat([
    encodeManifest(m),
    // field 99, wire type 0 (varint), value 300
    varint((99 << 3) | 0),
    varint(300),
    // field 100, wire type 2 (length-delimited), a string the reader does not know
    varint((100 << 3) | 2),
    varint(5),
    enc("hello"),
    // field 2000, wire type 5 (fixed32)
    varint((2000 << 3) | 5),
    new Uint8Array([1, 2, 3, 4]),
  ]);
  const file = wrap(body);
  const env = openManifestFile(file);
  assert.equal(env.version, 1);
  assert.deepEqual(decodeManifest(env.body), m);
});

Deno.test("decodeManifest ignores an unknown field placed before the known ones", () => {
  const m = minimalManifest();
  const body = concat([varint((99 << 3) | 0), varint(1), encodeManifest(m)]);
  assert.deepEqual(decodeManifest(openManifestFile(wrap(body)).body), m);
});

Deno.test("isReadableVersion accepts 1 to NEWEST_READABLE_FORMAT only", () => {
  assert.equal(isReadableVersion(1), true);
  assert.equal(isReadableVersion(FORMAT_VERSION), true);
  assert.equal(isReadableVersion(NEWEST_READABLE_FORMAT), true);
  assert.equal(isReadableVersion(NEWEST_READABLE_FORMAT + 1), false);
  assert.equal(isReadableVersion(0), false);
  assert.equal(isReadableVersion(1.5), false);
  assert.equal(isReadableVersion(Number.NaN), false);
});

Deno.test("manifestName formats the time as YYYYMMDD_HHMMSS in UTC", () => {
  const none: string[] = [];
  assert.equal(manifestName(Date.UTC(2024, 0, 2, 3, 4, 5, 678), none), "20240102_030405.manifest");
  assert.equal(
    manifestName(Date.UTC(2024, 11, 31, 23, 59, 59, 999), none),
    "20241231_235959.manifest",
  );
  assert.equal(manifestName(0, none), "19700101_000000.manifest");
  assert.equal(manifestName(Date.UTC(999, 5, 6, 7, 8, 9), none), "09990606_070809.manifest");
});

Deno.test("manifestName uses UTC whatever the local time zone", async () => {
  const code = `import { manifestName } from "./formats/manifest.ts";` +
    `console.log(new Date(0).getTimezoneOffset(), manifestName(Date.UTC(2024, 0, 1, 23, 30), []));`;
  for (const tz of ["Pacific/Kiritimati", "America/Los_Angeles"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code],
      cwd: new URL("..", import.meta.url),
      env: { TZ: tz },
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(out.code, 0, tz);
    const [offset, name] = new TextDecoder().decode(out.stdout).trim().split(" ");
    assert.notEqual(offset, "0", `${tz} is applied in the child`);
    assert.equal(name, "20240101_233000.manifest", tz);
  }
});

Deno.test("manifestName appends _2, _3, ... when the name is taken", () => {
  const t = Date.UTC(2024, 0, 2, 3, 4, 5);
  const names: string[] = [];
  for (let i = 0; i < 4; i++) names.push(manifestName(t, names));
  assert.deepEqual(names, [
    "20240102_030405.manifest",
    "20240102_030405_2.manifest",
    "20240102_030405_3.manifest",
    "20240102_030405_4.manifest",
  ]);
  for (const n of names) assert.equal(isManifestName(n), true, n);
});

Deno.test("manifestName never reuses a freed name and never goes back in time", () => {
  const t = Date.UTC(2024, 0, 2, 3, 4, 5);
  // The base name and _2 were vacuumed; _3 is the newest: the next is _4, not the freed base.
  assert.equal(manifestName(t, ["20240102_030405_3.manifest"]), "20240102_030405_4.manifest");
  assert.equal(
    manifestName(t, ["20240102_030405_9.manifest", "20240102_030405_10.manifest"]),
    "20240102_030405_11.manifest",
  );
  // An older newest name does not matter.
  assert.equal(manifestName(t, ["20240101_000000_5.manifest"]), "20240102_030405.manifest");
  // Clock gone backwards: still after the newest.
  assert.equal(manifestName(t, ["20250101_000000.manifest"]), "20250101_000000_2.manifest");
  // Names that are not manifest names are ignored.
  assert.equal(manifestName(t, ["README", "x.manifest"]), "20240102_030405.manifest");
});

Deno.test("isManifestName accepts only YYYYMMDD_HHMMSS[_N].manifest", () => {
  for (
    const ok of [
      "20240102_030405.manifest",
      "20240102_030405_2.manifest",
      "20240102_030405_12.manifest",
    ]
  ) {
    assert.equal(isManifestName(ok), true, ok);
  }
  for (
    const bad of [
      "",
      "20240102_030405",
      "20240102_030405.manifest.tmp",
      "20240102_030405.Manifest",
      "2024010_030405.manifest",
      "20240102_0304056.manifest",
      "20240102-030405.manifest",
      "20240102_030405_.manifest",
      "20240102_030405_x.manifest",
      "x20240102_030405.manifest",
      "../20240102_030405.manifest",
      "manifests/20240102_030405.manifest",
    ]
  ) {
    assert.equal(isManifestName(bad), false, bad);
  }
});

Deno.test("sameBackup ignores format versions, roots and the parent id, and nothing else", () => {
  const a = fullManifest();
  const copied: Manifest = {
    ...a,
    formatVersion: 2,
    formatMinor: 0,
    parentId: null,
    parts: a.parts.map((p, i) => ({ ...p, root: sha256(enc(`new root ${i}`)) })),
    logSegments: a.logSegments.map((l) => ({ ...l, root: sha256(enc("new seg root")) })),
  };
  assert.equal(sameBackup(a, copied), true);
  const others: Manifest[] = [
    { ...a, timeMs: a.timeMs + 1 },
    { ...a, parentName: null },
    { ...a, host: "other-host" },
    { ...a, labels: { ...a.labels, env: "test" } },
    { ...a, stats: { ...a.stats, files: a.stats.files + 1 } },
    { ...a, parts: a.parts.slice(1) },
    { ...a, parts: a.parts.map((p) => ({ ...p, chunker: null })) },
    { ...a, source: { ...a.source, key: "host-b:/etc/databend/query.toml" } },
    { ...a, catalog: null },
  ];
  for (const [i, b] of others.entries()) assert.equal(sameBackup(a, b), false, `variant ${i}`);
});
