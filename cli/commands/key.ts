/**
 * `bendsave key list | add | passwd | remove | export | import <repo>`: the
 * key slots of an encrypted repository (FORMAT.md section 21.1).
 *
 * @module
 */
import fs from "node:fs";
import { openStore } from "../../store/open_store.ts";
import { Repository } from "../../store/repository.ts";
import { addKeySlot, isMasterKeyOf, listKeySlots, removeKeySlot } from "../../store/keys.ts";
import { InvalidInput } from "../../store/errors.ts";
import { encodePaperKey, parsePaperKey } from "../../formats/paper_key.ts";
import { parse } from "../args.ts";
import { newPassphrase } from "../passphrase.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import type { Output } from "../output.ts";

/** Help text. */
export const KEY_HELP =
  `Usage: bendsave key <list | add | passwd | remove NAME | export | import> <repo> [options]

Manages the key slots of an encrypted repository (keys/): each holds the
repository's master key wrapped under one passphrase (Argon2id).

  list               the slots: name, label, creation time, KDF cost (no passphrase needed)
  add                a new slot for a new passphrase, unlocked by a current one
  passwd             replace the slot the current passphrase opens by a new passphrase
                     (the new slot is written before the old one is removed)
  remove NAME        remove a slot (not the last one, nor the one that unlocked the command)
  export             print the master key as a paper key (keep it offline: it opens everything)
  import             a new slot for a new passphrase from a paper key (--paper-file FILE)

The current passphrase: BENDSAVE_PASSWORD, --password-file FILE or --password-command CMD.
The new one (add, passwd, import): BENDSAVE_NEW_PASSWORD, --new-password-file FILE or
--new-password-command CMD.

Options:
  --label TEXT       add, passwd, import: a label for the new slot (host, person, site)
  --paper-file FILE  import: the paper key's text
  --json             machine-readable output
  -h, --help         this help`;

/** Runs the command. */
export async function keyCommand(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parse("key", args, {
    label: { type: "string" },
    "paper-file": { type: "string" },
    "new-password-file": { type: "string" },
    "new-password-command": { type: "string" },
  });
  if (values.help) {
    console.log(KEY_HELP);
    return ExitCode.ok;
  }
  const [action, ...rest] = positionals;
  const wants = action === "remove" ? 2 : 1;
  if (action === undefined || rest.length !== wants) {
    throw new UsageError("use bendsave key <action> <repo>: see bendsave key --help");
  }
  const location = action === "remove" ? rest[1]! : rest[0]!;
  const store = await openStore(location, { onWarning: out.warn });
  const label = typeof values.label === "string" ? values.label : "";
  const encrypted = async (keyOptional: boolean) => {
    const repo = await Repository.open(store, { keyOptional, onWarning: out.warn });
    if (!repo.encrypted) {
      throw new InvalidInput(`${store.location} is not an encrypted repository: it has no keys`);
    }
    return repo;
  };
  switch (action) {
    case "list": {
      const repo = await encrypted(true);
      const slots = await listKeySlots(store, repo.config.id);
      out.result({ type: "keys", keys: slots.map((s) => ({ name: s.name, ...jsonOf(s) })) });
      out.print(
        slots.map((s) =>
          s.file
            ? `${s.name}  ${s.file.created}  ${
              s.file.label || "-"
            }  argon2id m=${s.file.kdf.memoryKiB}KiB t=${s.file.kdf.iterations} p=${s.file.kdf.parallelism}`
            : `${s.name}  damaged: ${s.problem}`
        ).join("\n"),
      );
      return ExitCode.ok;
    }
    case "add":
    case "passwd": {
      const repo = await encrypted(false);
      const fresh = newPassphrase(values);
      const name = await addKeySlot(store, repo.config.id, repo.crypto!.key.raw, fresh, {
        kdf: repo.config.encryption!.kdf,
        label,
      });
      if (action === "passwd") await store.remove({ kind: "key", name: repo.keySlot! });
      out.result({
        type: "summary",
        added: name,
        removed: action === "passwd" ? repo.keySlot : null,
      });
      out.print(
        action === "passwd"
          ? `replaced key slot ${repo.keySlot} by ${name}`
          : `added key slot ${name}`,
      );
      return ExitCode.ok;
    }
    case "remove": {
      const repo = await encrypted(false);
      await removeKeySlot(repo, rest[0]!);
      out.result({ type: "summary", removed: rest[0] });
      out.print(`removed key slot ${rest[0]}`);
      return ExitCode.ok;
    }
    case "export": {
      const repo = await encrypted(false);
      const text = encodePaperKey(repo.crypto!.key.raw, repo.config.id);
      out.result({ type: "paper_key", text });
      out.print(text.trimEnd());
      return ExitCode.ok;
    }
    case "import": {
      const repo = await encrypted(true);
      const file = values["paper-file"];
      if (typeof file !== "string") {
        throw new UsageError(
          "bendsave key import needs --paper-file FILE: see bendsave key --help",
        );
      }
      let paper;
      try {
        paper = parsePaperKey(fs.readFileSync(file, "utf8"));
      } catch (e) {
        throw new InvalidInput(`paper key ${file}: ${(e as Error).message}`);
      }
      if (!repo.config.id.startsWith(paper.repositoryPrefix)) {
        throw new InvalidInput(
          `the paper key is of repository ${paper.repositoryPrefix}..., not of ${store.location} (${
            repo.config.id.slice(0, 16)
          }...)`,
        );
      }
      if (!await isMasterKeyOf(repo, paper.key)) {
        throw new InvalidInput(
          `the paper key does not open ${store.location}: check it against the printout`,
        );
      }
      const name = await addKeySlot(store, repo.config.id, paper.key, newPassphrase(values), {
        kdf: repo.config.encryption!.kdf,
        label,
      });
      out.result({ type: "summary", added: name });
      out.print(`added key slot ${name} from the paper key`);
      return ExitCode.ok;
    }
    default:
      throw new UsageError(`unknown key action "${action}": see bendsave key --help`);
  }
}

function jsonOf(s: Awaited<ReturnType<typeof listKeySlots>>[number]) {
  return s.file
    ? {
      created: s.file.created,
      label: s.file.label,
      kdf: {
        memoryKiB: s.file.kdf.memoryKiB,
        iterations: s.file.kdf.iterations,
        parallelism: s.file.kdf.parallelism,
      },
    }
    : { problem: s.problem };
}
