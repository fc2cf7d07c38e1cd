/**
 * The demo behind `./dev demo`: backs up the sample cluster in testdata/
 * into a local repository under demo/, lists the backups, shows the restore
 * dry run, restores, and checks the restored tree is identical.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { main } from "./main.ts";

const root = path.resolve(new URL("..", import.meta.url).pathname);
const source = path.join(root, "testdata", "sample-cluster");
const repo = path.join(root, "demo", "repo");
const target = path.join(root, "demo", "restored");

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
  fs.rmSync(target, { recursive: true, force: true });
  await step("back up the sample cluster (creates the repository on first run)", [
    "backup",
    "--from",
    source,
    "--to",
    repo,
  ]);
  await step("the backups in the repository", ["list", repo]);
  await step("what a restore would do (dry run)", ["restore", "--from", repo, "--to", target]);
  await step("restore it", ["restore", "--from", repo, "--to", target, "--confirm"]);
  const same = digest(source) === digest(target);
  console.log(
    `\nrestored tree ${
      same ? "is identical to" : "DIFFERS from"
    } the source (contents, modes, mtimes)`,
  );
  console.log(
    `repository: ${repo}\nrestored:   ${target}\nrun ./dev demo again for an incremental backup`,
  );
  Deno.exit(same ? 0 : 1);
}
