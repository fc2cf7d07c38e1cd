/**
 * The demo behind `./dev demo`: backs up the sample Databend cluster in
 * testdata/ (its query-node config, with the meta export from the file that
 * ships beside it, since no meta service runs here) into a local repository
 * under demo/, lists the backups, shows the cluster's catalog and the
 * restore dry run, restores the cluster into a fresh node directory, and
 * checks that its storage and meta export are identical.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { main } from "./main.ts";

const root = path.resolve(new URL("..", import.meta.url).pathname);
const source = path.join(root, "testdata", "sample-cluster");
const config = path.join(source, "query-node.toml");
const metaExport = path.join(source, "meta-export.jsonl");
const repo = path.join(root, "demo", "repo");
/** A fresh node: the sample's query-node config, so its storage is ./storage beside it. */
const node = path.join(root, "demo", "restored");
const nodeConfig = path.join(node, "query-node.toml");

function digest(dir: string): string {
  const h = createHash("sha256");
  const walk = (rel: string) => {
    for (
      const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((
        a,
        b,
      ) => (a.name < b.name ? -1 : 1))
    ) {
      const r = path.join(rel, e.name);
      const st = fs.lstatSync(path.join(dir, r));
      h.update(`${r} ${st.mode} ${Math.floor(st.mtimeMs)}\n`);
      if (e.isDirectory()) walk(r);
      else if (e.isSymbolicLink()) h.update(fs.readlinkSync(path.join(dir, r)));
      else h.update(fs.readFileSync(path.join(dir, r)));
    }
  };
  walk("");
  return h.digest("hex");
}

async function step(title: string, args: string[]): Promise<void> {
  console.log(`\n$ bendsave ${args.join(" ")}    # ${title}`);
  const code = await main(args);
  if (code !== 0) {
    console.error(`demo: "bendsave ${args[0]}" exited ${code}`);
    Deno.exit(code);
  }
}

if (import.meta.main) {
  if (!fs.existsSync(source)) {
    console.error(`demo: ${source} is missing: the sample cluster ships with the repository`);
    Deno.exit(1);
  }
  fs.rmSync(node, { recursive: true, force: true });
  fs.mkdirSync(node, { recursive: true });
  fs.copyFileSync(config, nodeConfig);
  await step("back up the sample cluster (creates the repository on first run)", [
    "backup",
    "--from",
    config,
    "--meta-export-file",
    metaExport,
    "--to",
    repo,
  ]);
  await step("the backups in the repository", ["list", repo]);
  await step("the newest backup: source, parts and the cluster's catalog", ["show", repo]);
  await step("what a restore into a fresh node would do (dry run)", [
    "restore",
    "--from",
    repo,
    "--to",
    nodeConfig,
  ]);
  await step("restore it", ["restore", "--from", repo, "--to", nodeConfig, "--confirm"]);
  const exported = fs.readdirSync(node).filter((n) => n.endsWith(".jsonl"));
  const sameStorage = digest(path.join(source, "storage")) === digest(path.join(node, "storage"));
  const sameMeta = exported.length === 1 &&
    fs.readFileSync(path.join(node, exported[0]!)).equals(fs.readFileSync(metaExport));
  console.log(
    `\nrestored storage ${
      sameStorage ? "is identical to" : "DIFFERS from"
    } the cluster's (contents, modes, mtimes); restored meta export ${
      sameMeta ? "is identical" : "DIFFERS"
    }`,
  );
  console.log(
    `repository: ${repo}\nrestored:   ${node}\nrun ./dev demo again for an incremental backup`,
  );
  Deno.exit(sameStorage && sameMeta ? 0 : 1);
}
