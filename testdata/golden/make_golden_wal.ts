/**
 * Creates the format 1.2 golden WAL archive: `testdata/golden/v1.2-wal/repo/`
 * (a repository holding a small PostgreSQL WAL archive and no backup) and
 * `testdata/golden/v1.2-wal/expected.json` (every archived file's record
 * fields and SHA-256). Run it ONCE, then commit `repo/` and `expected.json`;
 * never regenerate it (see README.md). The script refuses to overwrite the
 * fixture.
 *
 * With `--encrypted` it creates the format 2.0 one instead,
 * `testdata/golden/v2.0-wal/`: the same WAL files archived into an encrypted
 * repository (FORMAT.md 21.8) under {@linkcode GOLDEN_WAL_PASSPHRASE}, with
 * each record's keyed id in `expected.json` beside the file's SHA-256.
 *
 * ```sh
 * deno run --allow-all testdata/golden/make_golden_wal.ts
 * deno run --allow-all testdata/golden/make_golden_wal.ts --encrypted
 * ```
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { fileURLToPath } from "node:url";
import { FsStore } from "../../store/drivers/fs.ts";
import { Repository } from "../../store/repository.ts";
import { listWal, pushWal } from "../../store/wal_archive.ts";
import {
  ENCRYPTED_FORMAT_MINOR,
  ENCRYPTED_FORMAT_VERSION,
  FORMAT_MINOR,
  FORMAT_VERSION,
} from "../../formats/version.ts";
import { makeDataDir, makeSegment, TEST_SYSTEM_ID } from "../../testing/wal_segment.ts";

/** One archived file, as expected.json records it. */
export interface WalEntry {
  systemId: string;
  name: string;
  size: number;
  /** SHA-256 (hex) of the file. */
  sha256: string;
  /** The encrypted fixture: the record's id of the file (its keyed id, hex). */
  id?: string;
  blocks: number;
  pushTimeMs: number;
  timeline: number;
  /** Decimal. */
  startLsn: string;
  segmentSize: number;
}

/** The content of expected.json. */
export interface WalExpected {
  formatVersion: number;
  formatMinor: number;
  entries: WalEntry[];
}

const T_PUSH = Date.UTC(2026, 11, 1, 10, 0, 0);
const MiB = 1 << 20;
const OTHER_SYSTEM = "6999999999999999999";

/** The test passphrase of the encrypted fixture (also in v2.0-wal/README.md). */
export const GOLDEN_WAL_PASSPHRASE = "golden WAL fixture passphrase v2.0";

if (import.meta.main) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const encrypted = Deno.args.includes("--encrypted");
  const out = path.join(here, encrypted ? "v2.0-wal" : "v1.2-wal");
  const passphrase = () => Promise.resolve(GOLDEN_WAL_PASSPHRASE);
  if (fs.existsSync(out)) {
    console.error(`${out} exists: golden fixtures are never regenerated (see README.md)`);
    Deno.exit(1);
  }
  const work = fs.mkdtempSync("/tmp/bendsave-golden-wal-");
  try {
    const repoDir = path.join(out, "repo");
    const store = await FsStore.open(repoDir, { create: true });
    // 256 KiB fixed blocks: four per 1 MiB segment, so the zero tails share blocks.
    await Repository.init(store, {
      chunker: { kind: "fixed", size: 256 * 1024 },
      compression: { codec: "zstd", level: 3, minSaving: 0.03 },
      packSize: MiB,
      now: new Date(T_PUSH - 60_000),
      ...(encrypted ? { passphrase: GOLDEN_WAL_PASSPHRASE } : {}),
    });
    const pgData = makeDataDir(path.join(work, "data"));
    const other = makeDataDir(path.join(work, "other"), OTHER_SYSTEM);
    const wal = (dir: string, name: string, data: Uint8Array | string) => {
      const file = path.join(dir, "pg_wal", name);
      fs.writeFileSync(file, data);
      return file;
    };
    let t = T_PUSH;
    const push = async (file: string, pg: string) => {
      t += 60_000;
      const pushed = t;
      await pushWal(store, file, { pgData: pg, now: () => pushed, passphrase });
    };
    // Timeline 1: segments 1 and 2 (1 MiB segments, 40 KiB of WAL each, the rest zero),
    // the backup history file of a base backup, then the promotion: the partial
    // segment 3 of timeline 1, the history file of timeline 2 and its segment 3.
    for (const segno of [1, 2]) {
      const s = makeSegment({ segno, segmentSize: MiB, used: 40 * 1024, seed: segno });
      await push(wal(pgData, s.name, s.data), pgData);
    }
    await push(
      wal(
        pgData,
        "000000010000000000000001.00000028.backup",
        "START WAL LOCATION: 0/100028 (file 000000010000000000000001)\n" +
          "STOP WAL LOCATION: 0/100138 (file 000000010000000000000001)\n" +
          "CHECKPOINT LOCATION: 0/100060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n" +
          "START TIME: 2026-12-01 10:01:00 UTC\nLABEL: golden\nSTART TIMELINE: 1\n" +
          "STOP TIME: 2026-12-01 10:01:01 UTC\nSTOP TIMELINE: 1\n",
      ),
      pgData,
    );
    const partial = makeSegment({ segno: 3, segmentSize: MiB, used: 8 * 1024, seed: 3 });
    await push(wal(pgData, `${partial.name}.partial`, partial.data), pgData);
    await push(
      wal(pgData, "00000002.history", "1\t0/302000\tno recovery target specified\n"),
      pgData,
    );
    const tl2 = makeSegment({ segno: 3, timeline: 2, segmentSize: MiB, used: 12 * 1024, seed: 4 });
    await push(wal(pgData, tl2.name, tl2.data), pgData);
    // Another cluster's segment 1: the same name, kept apart by its system identifier.
    const o = makeSegment({ segno: 1, segmentSize: MiB, used: 4 * 1024, systemId: OTHER_SYSTEM });
    await push(wal(other, o.name, o.data), other);

    const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    const files = new Map<string, Uint8Array>();
    for (const dir of [pgData, other]) {
      const id = dir === other ? OTHER_SYSTEM : TEST_SYSTEM_ID;
      for (const n of fs.readdirSync(path.join(dir, "pg_wal"))) {
        files.set(`${id}/${n}`, fs.readFileSync(path.join(dir, "pg_wal", n)));
      }
    }
    const expected: WalExpected = {
      formatVersion: encrypted ? ENCRYPTED_FORMAT_VERSION : FORMAT_VERSION,
      formatMinor: encrypted ? ENCRYPTED_FORMAT_MINOR : FORMAT_MINOR,
      entries: (await listWal(await Repository.open(store, { passphrase }))).map((r) => ({
        systemId: r.systemId,
        name: r.name,
        size: r.size,
        sha256: sha(files.get(`${r.systemId}/${r.name}`)!),
        ...(encrypted ? { id: Buffer.from(r.sha256).toString("hex") } : {}),
        blocks: r.blocks.length,
        pushTimeMs: r.pushTimeMs,
        timeline: r.timeline,
        startLsn: r.startLsn.toString(),
        segmentSize: r.segmentSize,
      })),
    };
    fs.rmSync(path.join(repoDir, "locks"), { recursive: true, force: true });
    fs.writeFileSync(path.join(out, "expected.json"), JSON.stringify(expected, null, 2) + "\n");
    if (encrypted) {
      fs.writeFileSync(
        path.join(out, "README.md"),
        `# Golden encrypted WAL archive (format ${ENCRYPTED_FORMAT_VERSION}.${ENCRYPTED_FORMAT_MINOR})

Written once by \`../make_golden_wal.ts --encrypted\`; never regenerate it. The WAL files of
\`../v1.2-wal/\`, archived into an encrypted repository. Its test passphrase:

    ${GOLDEN_WAL_PASSPHRASE}

\`golden_wal_test.ts\` lists its sealed records, fetches every file byte for byte with that
passphrase, and verifies it with and without the key.
`,
      );
    }
    console.log(`wrote ${out}: ${expected.entries.length} WAL files`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
