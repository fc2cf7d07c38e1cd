import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { Buffer } from "node:buffer";
import { cli, describeTree, filesUnder, lastOfType, tempDir } from "../testing/mod.ts";
import { makeDataDir, makeSegment } from "../testing/wal_segment.ts";

const PASS = { BENDSAVE_PASSWORD: "correct horse battery staple" };
const MARKERS = [
  "MARKER-7f3c-plaintext-file-body",
  "MARKER-secret-dir-name",
  "MARKER-file-name",
] as const;

/** A small tree whose contents and names hold the marker strings. */
function markedTree(dir: string): string {
  fs.mkdirSync(path.join(dir, MARKERS[1]!, "sub"), { recursive: true });
  fs.writeFileSync(path.join(dir, `${MARKERS[2]}.txt`), `${MARKERS[0]}\n`.repeat(2000));
  fs.writeFileSync(path.join(dir, MARKERS[1]!, "sub", "small"), MARKERS[0]);
  const big = new Uint8Array(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  fs.writeFileSync(path.join(dir, "big.bin"), big);
  fs.writeFileSync(path.join(dir, "empty"), "");
  return dir;
}

async function encryptedRepo(dir: string): Promise<{ src: string; repo: string }> {
  const src = markedTree(path.join(dir, "src"));
  const repo = path.join(dir, "repo");
  const b = await cli(["backup", "--from", src, "--to", repo, "--encrypt", "--json"], {
    env: PASS,
  });
  assert.equal(b.code, 0, b.stderr);
  return { src, repo };
}

/** The pack files of a repository. */
function packsOf(repo: string): string[] {
  return filesUnder(path.join(repo, "packs")).map((f) => path.join(repo, "packs", f));
}

Deno.test("backup --encrypt stores no plaintext and restores byte for byte", async () => {
  await using t = await tempDir();
  const { src, repo } = await encryptedRepo(t.dir);
  const config = JSON.parse(fs.readFileSync(path.join(repo, "config"), "utf8"));
  assert.equal(config.version, 2);
  assert.equal(config.encryption.aead, "aes-256-gcm");
  assert.equal(filesUnder(path.join(repo, "keys")).length, 1);
  // Every stored byte but the guide, which says the repository is encrypted.
  for (const f of filesUnder(repo)) {
    if (f === "bendsave.md") continue;
    const bytes = fs.readFileSync(path.join(repo, f));
    for (const m of MARKERS) assert.equal(bytes.indexOf(m), -1, `${m} found in ${f}`);
  }
  const dest = path.join(t.dir, "dest");
  const r = await cli(["restore", "--from", repo, "--to", dest, "--confirm"], { env: PASS });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(describeTree(dest), describeTree(src));
  assert.deepEqual(
    fs.readFileSync(path.join(dest, "big.bin")),
    fs.readFileSync(path.join(src, "big.bin")),
  );
  // An unchanged second backup is incremental and adds nothing.
  const b2 = await cli(["backup", "--from", src, "--to", repo, "--json"], { env: PASS });
  assert.equal(b2.code, 0, b2.stderr);
  const s = lastOfType(b2.stdout, "summary");
  assert.equal(s.kind, "incremental");
  assert.equal(s.added_bytes, 0);
});

Deno.test("an encrypted repository without a passphrase or with a wrong one: exit 4, one line, nothing written", async () => {
  await using t = await tempDir();
  const { src, repo } = await encryptedRepo(t.dir);
  const before = filesUnder(repo);
  for (const env of [{ BENDSAVE_PASSWORD: "" }, { BENDSAVE_PASSWORD: "wrong" }]) {
    const r = await cli(["backup", "--from", src, "--to", repo], { env });
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(!r.stderr.includes("wrong"), "the passphrase is never printed");
    assert.match(
      r.stderr,
      env.BENDSAVE_PASSWORD ? /does not open/ : /is encrypted: give its passphrase/,
    );
    const l = await cli(["list", repo], { env });
    assert.equal(l.code, 4, l.stderr);
  }
  assert.deepEqual(filesUnder(repo), before);
});

Deno.test("the passphrase comes from --password-file or --password-command", async () => {
  await using t = await tempDir();
  const { repo } = await encryptedRepo(t.dir);
  const file = path.join(t.dir, "pw");
  fs.writeFileSync(file, `${PASS.BENDSAVE_PASSWORD}\n`);
  const a = await cli(["list", repo, "--password-file", file], { env: { BENDSAVE_PASSWORD: "" } });
  assert.equal(a.code, 0, a.stderr);
  const b = await cli(["list", repo, "--password-command", `cat ${file}`], {
    env: { BENDSAVE_PASSWORD: "" },
  });
  assert.equal(b.code, 0, b.stderr);
});

Deno.test("backup --encrypt into an unencrypted repository is refused", async () => {
  await using t = await tempDir();
  const src = markedTree(path.join(t.dir, "src"));
  const repo = path.join(t.dir, "repo");
  assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
  const before = filesUnder(repo);
  const r = await cli(["backup", "--from", src, "--to", repo, "--encrypt"], { env: PASS });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /unencrypted repository: --encrypt only creates a new one/);
  assert.deepEqual(filesUnder(repo), before);
  // The way out the message gives works.
  const advice = /bendsave (copy --encrypt --from \S+ --to) NEW_LOCATION/.exec(r.stderr);
  assert.ok(advice, r.stderr);
  const encrypted = path.join(t.dir, "encrypted");
  const c = await cli([...advice[1]!.split(" "), encrypted], { env: PASS });
  assert.equal(c.code, 0, c.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(encrypted, "config"), "utf8")).version, 2);
});

Deno.test("verify of an encrypted repository with and without the key", async () => {
  await using t = await tempDir();
  const { repo } = await encryptedRepo(t.dir);
  const keyed = await cli(["verify", repo, "--read-data"], { env: PASS });
  assert.equal(keyed.code, 0, keyed.stdout + keyed.stderr);
  assert.match(keyed.stdout, /verdict: OK/);
  const keyless = await cli(["verify", repo, "--read-data"], { env: { BENDSAVE_PASSWORD: "" } });
  assert.equal(keyless.code, 0, keyless.stdout + keyless.stderr);
  assert.match(keyless.stdout.split("\n")[0]!, /checking hashes only/);
  assert.match(keyless.stdout, /verdict: OK/);
});

/** Flips one byte of `file` at `pos` (from the end when negative). */
function flip(file: string, pos: number): void {
  const b = fs.readFileSync(file);
  b[pos < 0 ? b.length + pos : pos]! ^= 0x40;
  fs.writeFileSync(file, b);
}

for (
  const [what, pick, kind] of [
    [
      "a pack",
      (repo: string) => packsOf(repo).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!,
      "pack",
    ],
    [
      "an index file",
      (repo: string) => path.join(repo, "index", filesUnder(path.join(repo, "index"))[0]!),
      "index",
    ],
    [
      "a manifest",
      (repo: string) => path.join(repo, "manifests", filesUnder(path.join(repo, "manifests"))[0]!),
      "manifest",
    ],
  ] as const
) {
  Deno.test(`a flipped byte in ${what} is found and named by keyless and keyed verify`, async () => {
    await using t = await tempDir();
    const { repo } = await encryptedRepo(t.dir);
    const file = pick(repo);
    flip(file, 100);
    const name = path.basename(file);
    const keyless = await cli(["verify", repo, "--read-data"], { env: { BENDSAVE_PASSWORD: "" } });
    assert.equal(keyless.code, 1, keyless.stdout + keyless.stderr);
    assert.match(keyless.stdout, new RegExp(`damaged ${kind} ${name}`));
    const keyed = await cli(["verify", repo, "--read-data"], { env: PASS });
    assert.equal(keyed.code, 1, keyed.stdout + keyed.stderr);
    assert.ok(keyed.stdout.includes(name), keyed.stdout);
    assert.match(keyed.stdout, /verdict: DAMAGED/);
  });
}

Deno.test("vacuum of an encrypted repository repacks sealed blocks and the survivor restores", async () => {
  await using t = await tempDir();
  const { src, repo } = await encryptedRepo(t.dir);
  fs.rmSync(path.join(src, "big.bin"));
  fs.writeFileSync(path.join(src, "new.txt"), "second generation");
  assert.equal((await cli(["backup", "--from", src, "--to", repo], { env: PASS })).code, 0);
  const v = await cli(["vacuum", repo, "--keep-last", "1", "--json"], { env: PASS });
  assert.equal(v.code, 0, v.stderr);
  const summary = lastOfType(v.stdout, "summary");
  assert.equal(summary.removed_index_files, 2, "one new index file for two");
  assert.ok(Number(summary.new_packs) >= 1, `sealed blocks were repacked: ${v.stdout}`);
  assert.equal(filesUnder(path.join(repo, "manifests")).length, 1);
  for (const env of [PASS, { BENDSAVE_PASSWORD: "" }]) {
    const check = await cli(["verify", repo, "--read-data"], { env });
    assert.equal(check.code, 0, check.stdout + check.stderr);
  }
  const dest = path.join(t.dir, "dest");
  const r = await cli(["restore", "--from", repo, "--to", dest, "--confirm"], { env: PASS });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(describeTree(dest), describeTree(src));
  for (const f of filesUnder(repo)) {
    if (f === "bendsave.md") continue;
    const bytes = fs.readFileSync(path.join(repo, f));
    for (const m of MARKERS) assert.equal(bytes.indexOf(m), -1, `${m} found in ${f}`);
  }
  const none = await cli(["vacuum", repo, "--keep-last", "1"], { env: { BENDSAVE_PASSWORD: "" } });
  assert.equal(none.code, 4, none.stderr);
});

Deno.test("repair index of an encrypted repository rebuilds a sealed index that restores", async () => {
  await using t = await tempDir();
  const { src, repo } = await encryptedRepo(t.dir);
  for (const f of filesUnder(path.join(repo, "index"))) fs.rmSync(path.join(repo, "index", f));
  const r = await cli(["repair", "index", repo], { env: PASS });
  assert.equal(r.code, 0, r.stderr);
  const [index] = filesUnder(path.join(repo, "index"));
  assert.equal(fs.readFileSync(path.join(repo, "index", index!))[4], 2, "a sealed index file");
  const dest = path.join(t.dir, "dest");
  const restored = await cli(["restore", "--from", repo, "--to", dest, "--confirm"], { env: PASS });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(describeTree(dest), describeTree(src));
});

Deno.test("key add, list, passwd, remove, export and import manage the slots", async () => {
  await using t = await tempDir();
  const { repo } = await encryptedRepo(t.dir);
  const keys = () => filesUnder(path.join(repo, "keys")).sort();
  const [first] = keys();
  // The last key cannot be removed, nor the one that unlocked the command.
  const last = await cli(["key", "remove", first!, repo], { env: PASS });
  assert.equal(last.code, 2, last.stderr);
  assert.match(last.stderr, /is the last one/);
  const add = await cli(["key", "add", repo, "--label", "dr-site"], {
    env: { ...PASS, BENDSAVE_NEW_PASSWORD: "second passphrase" },
  });
  assert.equal(add.code, 0, add.stderr);
  assert.equal(keys().length, 2);
  const list = await cli(["key", "list", repo], { env: { BENDSAVE_PASSWORD: "" } });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /dr-site/);
  const second = { BENDSAVE_PASSWORD: "second passphrase" };
  assert.equal((await cli(["list", repo], { env: second })).code, 0);
  const own = await cli(["key", "remove", first!, repo], { env: PASS });
  assert.match(own.stderr, /the one this passphrase opened/);
  assert.equal((await cli(["key", "remove", first!, repo], { env: second })).code, 0);
  assert.equal((await cli(["list", repo], { env: PASS })).code, 4, "the removed slot is gone");
  // passwd replaces the slot that opened it.
  const pw = await cli(["key", "passwd", repo], {
    env: { ...second, BENDSAVE_NEW_PASSWORD: "third passphrase" },
  });
  assert.equal(pw.code, 0, pw.stderr);
  assert.equal(keys().length, 1);
  assert.equal((await cli(["list", repo], { env: second })).code, 4);
  const third = { BENDSAVE_PASSWORD: "third passphrase" };
  // export, then import into a fresh slot from the paper key.
  const exp = await cli(["key", "export", repo], { env: third });
  assert.equal(exp.code, 0, exp.stderr);
  assert.match(exp.stdout, /^bendsave master key v1\nrepository [0-9a-f]{16}\n1: /);
  const paper = path.join(t.dir, "paper.txt");
  fs.writeFileSync(paper, exp.stdout);
  const imp = await cli(["key", "import", repo, "--paper-file", paper], {
    env: { BENDSAVE_PASSWORD: "", BENDSAVE_NEW_PASSWORD: "from paper" },
  });
  assert.equal(imp.code, 0, imp.stderr);
  assert.equal((await cli(["list", repo], { env: { BENDSAVE_PASSWORD: "from paper" } })).code, 0);
  // A paper key with a typo is refused by line, nothing written.
  fs.writeFileSync(
    paper,
    exp.stdout.replace(/\n1: (.)/, (_m, c) => `\n1: ${c === "0" ? "1" : "0"}`),
  );
  const before = keys();
  const bad = await cli(["key", "import", repo, "--paper-file", paper], {
    env: { BENDSAVE_NEW_PASSWORD: "x" },
  });
  assert.equal(bad.code, 2, bad.stderr);
  assert.deepEqual(keys(), before);
});

Deno.test("wal-push and wal-fetch on an encrypted repository take the passphrase from --password-file or --password-command, and fail without it", async () => {
  await using t = await tempDir();
  const { repo } = await encryptedRepo(t.dir);
  const pgData = makeDataDir(path.join(t.dir, "data"));
  const seg = makeSegment({ segno: 3, used: 1 << 20 });
  seg.data.set(new TextEncoder().encode(MARKERS[0]), 4096);
  const file = path.join(pgData, "pg_wal", seg.name);
  fs.writeFileSync(file, seg.data);
  const passFile = path.join(t.dir, "pass");
  fs.writeFileSync(passFile, `${PASS.BENDSAVE_PASSWORD}\n`, { mode: 0o600 });
  const none = { BENDSAVE_PASSWORD: "" };
  const before = filesUnder(repo);
  const refused = await cli(["wal-push", file, "--to", repo, "--pg-data", pgData], { env: none });
  assert.equal(refused.code, 4, refused.stderr);
  assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
  assert.match(refused.stderr, /is encrypted: give its passphrase/);
  assert.deepEqual(filesUnder(repo), before);

  const pushed = await cli(
    ["wal-push", file, "--to", repo, "--pg-data", pgData, "--password-file", passFile],
    { env: none },
  );
  assert.equal(pushed.code, 0, pushed.stderr);
  for (const f of filesUnder(repo)) {
    if (f === "bendsave.md") continue;
    assert.equal(fs.readFileSync(path.join(repo, f)).indexOf(MARKERS[0]), -1, `marker in ${f}`);
  }
  const dest = path.join(t.dir, "RECOVERYXLOG");
  const fetchArgs = ["wal-fetch", seg.name, dest, "--from", repo, "--pg-data", pgData];
  // Without the key a fetch must stop recovery (126), not say "not archived" (1).
  const blind = await cli(fetchArgs, { env: none });
  assert.equal(blind.code, 126, blind.stderr);
  assert.equal(fs.existsSync(dest), false);
  const fetched = await cli([...fetchArgs, "--password-command", `cat '${passFile}'`], {
    env: none,
  });
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.deepEqual(fs.readFileSync(dest), Buffer.from(seg.data));
  // list, show and verify read the sealed records with the key; keyless verify by hashes.
  const v = await cli(["verify", repo, "--json"], { env: none });
  assert.equal(v.code, 0, v.stderr);
  const report = lastOfType(v.stdout, "report");
  assert.equal(report.keyless, true, "no passphrase: hashes only");
  assert.equal((report.checked as Record<string, number>).wal_files, 1);
});

Deno.test("wal-push --async and wal-fetch --prefetch hand --password-file to their background process", async () => {
  await using t = await tempDir();
  const { repo } = await encryptedRepo(t.dir);
  const pgData = makeDataDir(path.join(t.dir, "data"));
  fs.mkdirSync(path.join(pgData, "pg_wal", "archive_status"), { recursive: true });
  const passFile = path.join(t.dir, "pass");
  fs.writeFileSync(passFile, PASS.BENDSAVE_PASSWORD, { mode: 0o600 });
  const none = { BENDSAVE_PASSWORD: "" };
  const segs = [1, 2, 3].map((segno) => makeSegment({ segno, used: 1 << 20 }));
  for (const s of segs) {
    fs.writeFileSync(path.join(pgData, "pg_wal", s.name), s.data);
    fs.writeFileSync(path.join(pgData, "pg_wal", "archive_status", `${s.name}.ready`), "");
  }
  for (const s of segs) {
    const r = await cli([
      "wal-push",
      path.join(pgData, "pg_wal", s.name),
      "--to",
      repo,
      "--pg-data",
      pgData,
      "--async",
      "--password-file",
      passFile,
    ], { env: none });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.deepEqual(filesUnder(path.join(repo, "wal")).map((f) => path.basename(f)).sort(), [
    ...segs.map((s) => s.name),
  ]);
  const restored = makeDataDir(path.join(t.dir, "restored"));
  fs.writeFileSync(path.join(restored, "recovery.signal"), "");
  const dest = path.join(restored, "pg_wal", "RECOVERYXLOG");
  const spool = path.join(restored, "pg_wal", "bendsave-prefetch");
  const fetch = (name: string) =>
    cli([
      "wal-fetch",
      name,
      dest,
      "--from",
      repo,
      "--pg-data",
      restored,
      "--prefetch",
      "2",
      "--password-file",
      passFile,
      "--json",
    ], { env: none });
  const first = await fetch(segs[0]!.name);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(fs.readFileSync(dest), Buffer.from(segs[0]!.data));
  for (let i = 0; i < 300 && !fs.existsSync(path.join(spool, `${segs[1]!.name}.meta`)); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const second = await fetch(segs[1]!.name);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(lastOfType(second.stdout, "summary").spooled, true, "the prefetcher unlocked it");
  assert.deepEqual(fs.readFileSync(dest), Buffer.from(segs[1]!.data));
  fs.rmSync(path.join(restored, "recovery.signal")); // the prefetcher exits and empties its spool
});

/** Asserts that no stored file of `repo` but its guide holds a marker string. */
function assertNoMarkers(repo: string): void {
  for (const f of filesUnder(repo)) {
    if (f === "bendsave.md") continue;
    const bytes = fs.readFileSync(path.join(repo, f));
    for (const m of MARKERS) assert.equal(bytes.indexOf(m), -1, `${m} found in ${f}`);
  }
}

/** Restores `repo` into a new directory with `env` and asserts it equals `src`, byte for byte. */
async function assertRestores(
  repo: string,
  src: string,
  target: string,
  env: Record<string, string>,
): Promise<void> {
  const r = await cli(["restore", "--from", repo, "--to", target, "--confirm"], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(describeTree(target), describeTree(src));
  for (const f of [`${MARKERS[2]}.txt`, "big.bin", `${MARKERS[1]}/sub/small`]) {
    assert.deepEqual(fs.readFileSync(path.join(target, f)), fs.readFileSync(path.join(src, f)), f);
  }
}

/** The four key lines of `key export` (the master key, without the repository line). */
async function paperKey(repo: string, env: Record<string, string>): Promise<string> {
  const r = await cli(["key", "export", repo], { env });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter((l) => /^[1-4]: /.test(l)).join("\n");
}

Deno.test("copy of an encrypted repository into a new location keeps its master key and its manifests byte for byte", async () => {
  await using t = await tempDir();
  const { src, repo } = await encryptedRepo(t.dir);
  const dest = path.join(t.dir, "offsite");
  const r = await cli(["copy", "--from", repo, "--to", dest], { env: PASS });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /created repository .* encrypted with its master key/);
  const [name] = filesUnder(path.join(repo, "manifests"));
  assert.deepEqual(
    fs.readFileSync(path.join(dest, "manifests", name!)),
    fs.readFileSync(path.join(repo, "manifests", name!)),
  );
  assert.equal(await paperKey(dest, PASS), await paperKey(repo, PASS), "the same master key");
  assertNoMarkers(dest);
  await assertRestores(dest, src, path.join(t.dir, "restored"), PASS);
});

Deno.test("copy --encrypt rotates the master key: a re-encrypted copy under its own passphrase restores byte for byte and holds no plaintext", async () => {
  await using t = await tempDir();
  const { src, repo } = await encryptedRepo(t.dir);
  const dest = path.join(t.dir, "rotated");
  const pwFile = path.join(t.dir, "new-pw");
  fs.writeFileSync(pwFile, "a new passphrase\n");
  const r = await cli(
    ["copy", "--from", repo, "--to", dest, "--encrypt", "--to-password-file", pwFile, "--json"],
    { env: PASS },
  );
  assert.equal(r.code, 0, r.stderr);
  const s = lastOfType(r.stdout, "summary");
  assert.deepEqual([s.mode, s.encrypted, s.master_key, s.manifests_copied], [
    "reencoded",
    true,
    "new",
    1,
  ]);
  const NEW = { BENDSAVE_PASSWORD: "a new passphrase" };
  assert.notEqual(await paperKey(dest, NEW), await paperKey(repo, PASS), "a new master key");
  assert.equal((await cli(["list", dest], { env: PASS })).code, 4, "the old passphrase opens none");
  assertNoMarkers(dest);
  const v = await cli(["verify", dest, "--read-data"], { env: NEW });
  assert.equal(v.code, 0, v.stdout + v.stderr);
  await assertRestores(dest, src, path.join(t.dir, "restored"), NEW);
  // Run again with the destination's passphrase in its own variable: nothing to do.
  const again = await cli(["copy", "--from", repo, "--to", dest, "--json"], {
    env: { ...PASS, BENDSAVE_TO_PASSWORD: "a new passphrase" },
  });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(lastOfType(again.stdout, "summary").manifests_skipped, 1);
});

Deno.test("copy --encrypt of an unencrypted repository stores its backups encrypted", async () => {
  await using t = await tempDir();
  const src = markedTree(path.join(t.dir, "src"));
  const plain = path.join(t.dir, "plain");
  assert.equal((await cli(["backup", "--from", src, "--to", plain])).code, 0);
  const dest = path.join(t.dir, "encrypted");
  const r = await cli(["copy", "--from", plain, "--to", dest, "--encrypt"], { env: PASS });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /encrypted with a new master key/);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dest, "config"), "utf8")).version, 2);
  assertNoMarkers(dest);
  await assertRestores(dest, src, path.join(t.dir, "restored"), PASS);
  const none = await cli(["copy", "--from", plain, "--to", path.join(t.dir, "x"), "--encrypt"]);
  assert.equal(none.code, 4, none.stderr);
  assert.match(none.stderr, /needs a passphrase/);
  assert.equal(fs.existsSync(path.join(t.dir, "x")), false, "nothing was created");
});

Deno.test("copy of an encrypted repository into an unencrypted one needs --decrypt", async () => {
  await using t = await tempDir();
  const { src, repo } = await encryptedRepo(t.dir);
  const fresh = path.join(t.dir, "fresh");
  const created = await cli(["copy", "--from", repo, "--to", fresh], { env: PASS });
  assert.equal(created.code, 0, created.stderr);
  assert.equal(
    JSON.parse(fs.readFileSync(path.join(fresh, "config"), "utf8")).version,
    2,
    "without --decrypt a new destination is encrypted like its source",
  );
  const other = path.join(t.dir, "other-plain");
  assert.equal(
    (await cli(["backup", "--from", path.join(src, MARKERS[1]!), "--to", other])).code,
    0,
  );
  const before = filesUnder(other);
  const r = await cli(["copy", "--from", repo, "--to", other], { env: PASS });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /would be stored in plaintext: give --decrypt to do that on purpose/);
  assert.deepEqual(filesUnder(other), before, "nothing was written");
  const d = await cli(["copy", "--from", repo, "--to", other, "--decrypt"], { env: PASS });
  assert.equal(d.code, 0, d.stderr);
  const v = await cli(["verify", other, "--read-data"]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  await assertRestores(
    `${other}/manifests/${filesUnder(path.join(repo, "manifests"))[0]}`,
    src,
    path.join(t.dir, "restored"),
    {},
  );
});

Deno.test("copy with a wrong passphrase at either end: exit 4, one line, nothing written", async () => {
  await using t = await tempDir();
  const { repo } = await encryptedRepo(t.dir);
  const dest = path.join(t.dir, "dest");
  const first = await cli(["copy", "--from", repo, "--to", dest, "--encrypt"], {
    env: { ...PASS, BENDSAVE_TO_PASSWORD: "destination passphrase" },
  });
  assert.equal(first.code, 0, first.stderr);
  const before = { src: filesUnder(repo), dst: filesUnder(dest) };
  for (
    const [env, pattern] of [
      [{ BENDSAVE_PASSWORD: "wrong" }, /^the passphrase does not open repository /],
      [
        { ...PASS, BENDSAVE_TO_PASSWORD: "wrong" },
        /^copy destination: the passphrase does not open .*BENDSAVE_TO_PASSWORD/,
      ],
      [PASS, /^copy destination: the passphrase does not open/],
    ] as const
  ) {
    const r = await cli(["copy", "--from", repo, "--to", dest], { env });
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr.replace(/^bendsave: (error: )?/, ""), pattern);
    assert.ok(!r.stderr.includes("wrong"), "the passphrase is never printed");
  }
  assert.deepEqual({ src: filesUnder(repo), dst: filesUnder(dest) }, before);
  // A destination without a readable key file: its own fix, not another passphrase.
  fs.rmSync(path.join(dest, "keys"), { recursive: true });
  fs.mkdirSync(path.join(dest, "keys"));
  const r = await cli(["copy", "--from", repo, "--to", dest], { env: PASS });
  assert.equal(r.code, 4, r.stderr);
  assert.match(
    r.stderr,
    /copy destination: repository .* has no readable key file .*: restore keys\/ from a copy, or import the paper key\n$/,
  );
  assert.ok(!r.stderr.includes("BENDSAVE_TO_PASSWORD"), r.stderr);
});
