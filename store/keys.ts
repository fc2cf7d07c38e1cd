/**
 * Key slots of an encrypted repository (FORMAT.md section 21): files
 * `keys/<SHA-256 of the file>`, each the master key wrapped under one
 * passphrase (formats/key_file.ts). Adding a slot writes one more file;
 * unlocking tries each slot in name order until one opens.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import { InvalidInput, PassphraseError } from "./errors.ts";
import type { Repository } from "./repository.ts";
import { RepoCrypto } from "./repo_crypto.ts";
import { openManifestFile } from "../formats/manifest.ts";
import { SealError } from "../formats/seal.ts";
import { isHexId, sha256, toHex } from "../formats/hash.ts";
import {
  encodeKeyFile,
  type KeyFile,
  parseKeyFile,
  unwrapMasterKey,
  wrapMasterKey,
  type WrapOptions,
  WrongPassphrase,
} from "../formats/key_file.ts";

export {
  type PassphraseSource,
  passphraseSource,
  setPassphraseSource,
} from "./passphrase_source.ts";

/** Writes a new key slot holding `masterKey` under `passphrase`; returns its file name. */
export async function addKeySlot(
  store: BlobStore,
  repositoryId: string,
  masterKey: Uint8Array,
  passphrase: string,
  options: WrapOptions = {},
): Promise<string> {
  const bytes = encodeKeyFile(await wrapMasterKey(masterKey, passphrase, repositoryId, options));
  const name = toHex(sha256(bytes));
  await store.save({ kind: "key", name }, bytes, { exclusive: true });
  return name;
}

/** A key slot as listed: its file name and decoded file, or why it is unreadable. */
export type KeySlot =
  | { readonly name: string; readonly file: KeyFile; readonly problem: null }
  | { readonly name: string; readonly file: null; readonly problem: string };

/** Every key slot of the repository, in name order; damaged files carry their problem. */
export async function listKeySlots(store: BlobStore, repositoryId: string): Promise<KeySlot[]> {
  const names: string[] = [];
  for await (const f of store.list("key")) if (isHexId(f.name)) names.push(f.name);
  names.sort();
  const out: KeySlot[] = [];
  for (const name of names) {
    const bytes = await store.load({ kind: "key", name });
    if (toHex(sha256(bytes)) !== name) {
      out.push({ name, file: null, problem: `key file ${name} does not match its name (damaged)` });
      continue;
    }
    try {
      const file = parseKeyFile(bytes);
      if (file.repository !== repositoryId) {
        out.push({ name, file: null, problem: `key file ${name} is of another repository` });
      } else out.push({ name, file, problem: null });
    } catch (e) {
      out.push({ name, file: null, problem: `key file ${name}: ${(e as Error).message}` });
    }
  }
  return out;
}

/**
 * Master keys this process unwrapped, by repository id, key file name and
 * the SHA-256 of the passphrase: in memory only, never written anywhere. A
 * key file is named by its SHA-256, so the same name with the same
 * passphrase always unwraps to the same key; a slot removed or replaced
 * (`key passwd`) is no longer listed, and its entry is not used. A process
 * that opens the repository again (the background WAL pusher, per WAL
 * file) runs the KDF (Argon2id, 64 MiB) once.
 */
const unwrapped = new Map<string, Promise<Uint8Array>>();

function memoKey(repositoryId: string, slot: string, passphrase: string): string {
  return `${repositoryId}/${slot}/${toHex(sha256(new TextEncoder().encode(passphrase)))}`;
}

/** The master key in key file `file` (slot `slot`), unwrapped once per process and passphrase. */
function unwrapOnce(
  repositoryId: string,
  slot: string,
  file: KeyFile,
  passphrase: string,
): Promise<Uint8Array> {
  const key = memoKey(repositoryId, slot, passphrase);
  let p = unwrapped.get(key);
  if (!p) {
    p = unwrapMasterKey(file, passphrase);
    unwrapped.set(key, p);
    p.catch(() => unwrapped.delete(key)); // a wrong passphrase costs the KDF each time
  }
  return p;
}

/**
 * The master key (64 bytes) of the first key slot `passphrase` opens, and
 * that slot's name. Damaged key files are skipped and reported through
 * `onWarning`; a passphrase that opens none is a {@linkcode PassphraseError}.
 * A slot this process opened before with the same passphrase is tried first
 * and costs no KDF run (see `unwrapped` above).
 */
export async function unlock(
  store: BlobStore,
  repositoryId: string,
  passphrase: string,
  onWarning: (message: string) => void = () => {},
): Promise<{ masterKey: Uint8Array; slot: string }> {
  const slots = await listKeySlots(store, repositoryId);
  // Every damaged slot is reported, whichever slot opens.
  for (const s of slots) if (s.problem !== null) onWarning(`skipping ${s.problem}`);
  const usable = slots.filter((s): s is Extract<KeySlot, { problem: null }> => s.problem === null);
  const known = (s: KeySlot) => unwrapped.has(memoKey(repositoryId, s.name, passphrase));
  const order = [...usable.filter(known), ...usable.filter((s) => !known(s))];
  for (const s of order) {
    try {
      return {
        masterKey: new Uint8Array(await unwrapOnce(repositoryId, s.name, s.file, passphrase)),
        slot: s.name,
      };
    } catch (e) {
      if (e instanceof WrongPassphrase) continue;
      onWarning(`skipping key file ${s.name}: ${(e as Error).message}`);
    }
  }
  if (!slots.some((s) => s.problem === null)) {
    throw new PassphraseError(
      `repository ${store.location} is encrypted but has no readable key file (keys/ is empty or damaged): restore keys/ from a copy, or import the paper key`,
    );
  }
  throw PassphraseError.wanting(
    `the passphrase does not open repository ${store.location}`,
    "check BENDSAVE_PASSWORD, --password-file or --password-command",
  );
}

/**
 * Removes key slot `name` of the unlocked repository `repo`: refused for
 * the last readable slot and for the slot that unlocked `repo`, so that
 * the operator cannot lock themselves out.
 */
export async function removeKeySlot(repo: Repository, name: string): Promise<void> {
  repo.requireKey();
  const slots = await listKeySlots(repo.store, repo.config.id);
  const readable = slots.filter((s) => s.problem === null);
  if (!slots.some((s) => s.name === name)) {
    throw new InvalidInput(`no key slot ${name}: run bendsave key list to see them`);
  }
  if (readable.length <= 1 && readable[0]?.name === name) {
    throw new InvalidInput(`key slot ${name} is the last one: add another before removing it`);
  }
  if (name === repo.keySlot) {
    throw new InvalidInput(
      `key slot ${name} is the one this passphrase opened: remove it with another passphrase (key passwd replaces it)`,
    );
  }
  await repo.store.remove({ kind: "key", name });
}

/**
 * True when `raw` is the master key of `repo`: it opens the repository's
 * first manifest (or, with none, its first index file).
 */
export async function isMasterKeyOf(repo: Repository, raw: Uint8Array): Promise<boolean> {
  const crypto = await RepoCrypto.from(raw);
  try {
    const [name] = await repo.manifestNames();
    if (name !== undefined) {
      const env = openManifestFile(await repo.store.load({ kind: "manifest", name }));
      await crypto.openManifest(name, env.body);
      return true;
    }
    for await (const f of repo.store.list("index")) {
      if (!isHexId(f.name)) continue;
      await crypto.openIndexFile(await repo.store.load({ kind: "index", name: f.name }), f.name);
      return true;
    }
    return true; // nothing sealed yet to check it against
  } catch (e) {
    if (e instanceof SealError) return false;
    throw e;
  }
}
