/**
 * The repository: config, index, blocks, trees and manifests over a blob
 * store. Operations (backup, restore, list) are built on it in their own
 * files.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import type { BlobStore } from "./drivers/types.ts";
import {
  BendsaveError,
  IntegrityError,
  InvalidInput,
  NotFound,
  PassphraseError,
  RepositoryNotFound,
  UnsupportedFormat,
} from "./errors.ts";
import { type BlobLocation, BlockIndex } from "./block_index.ts";
import { type ChunkerParams, DEFAULT_FIXED } from "../formats/chunker.ts";
import { type CompressionOptions, decodeBlock, DEFAULT_COMPRESSION } from "../formats/codec.ts";
import { equalBytes, isHexId, sha256, toHex } from "../formats/hash.ts";
import {
  compareManifestNames,
  decodeManifest,
  encodeManifest as encodeManifestBody,
  encodeManifestFile,
  isManifestName,
  isReadableVersion,
  type Manifest,
  manifestEnvelope,
  NewerManifestError,
  openManifestFile,
} from "../formats/manifest.ts";
import {
  DEFAULT_PACK_SIZE,
  encodeRepoConfig,
  NewerFormatError,
  newRepoConfig,
  parseRepoConfig,
  type RepoConfig,
} from "../formats/repo_config.ts";
import { decodeTree, type TreeNode } from "../formats/tree.ts";
import { NEWEST_READABLE_FORMAT } from "../formats/version.ts";
import { repositoryGuide } from "./guide.ts";
import { RepoCrypto } from "./repo_crypto.ts";
import { addKeySlot, type PassphraseSource, passphraseSource, unlock } from "./keys.ts";
import { blockIdOf } from "../formats/block_seal.ts";
import { DEFAULT_KDF } from "../formats/key_file.ts";
import { generateMasterKey, masterKeyFrom } from "../formats/master_key.ts";
import { SealError } from "../formats/seal.ts";

/** Options for creating a repository. */
export interface InitOptions {
  readonly chunker?: ChunkerParams;
  readonly compression?: CompressionOptions;
  readonly packSize?: number;
  readonly now?: Date;
  /** Create an encrypted repository (format 2) whose first key slot opens with this passphrase. */
  readonly passphrase?: string;
  /**
   * The 64-byte master key of an encrypted repository (with `passphrase`):
   * a copy's new destination keeps its source's key this way. Default: a new
   * random one.
   */
  readonly masterKey?: Uint8Array;
  /** KDF cost of the first key slot (tests use a cheap one). */
  readonly kdf?: { memoryKiB: number; iterations: number; parallelism: number };
}

/** Options of {@linkcode Repository.open}. */
export interface OpenOptions {
  /** Where to get the passphrase of an encrypted repository (default: the one the CLI set). */
  readonly passphrase?: PassphraseSource;
  /**
   * Open an encrypted repository even without a passphrase (keyless
   * verify): `crypto` is then null and anything that needs the key throws.
   */
  readonly keyOptional?: boolean;
  readonly onWarning?: (message: string) => void;
}

/** A manifest with its file name and id. */
export interface ManifestRecord {
  /** File name, `YYYYMMDD_HHMMSS[_N].manifest`. */
  readonly name: string;
  /** SHA-256 of the manifest file. */
  readonly id: Uint8Array;
  readonly manifest: Manifest;
  /** Size of the manifest file. */
  readonly size: number;
}

/** An open repository. */
export class Repository {
  readonly store: BlobStore;
  readonly config: RepoConfig;
  readonly index: BlockIndex = new BlockIndex();
  /** The master key's sealing and ids: set in an encrypted repository opened with its passphrase. */
  readonly crypto: RepoCrypto | null;
  /** The key slot (key file name) that unlocked it, or null. */
  readonly keySlot: string | null;
  #indexLoaded = false;
  /** The index files loaded (or written by this process and noted). */
  readonly #indexFiles = new Set<string>();

  private constructor(
    store: BlobStore,
    config: RepoConfig,
    crypto: RepoCrypto | null = null,
    keySlot: string | null = null,
  ) {
    this.store = store;
    this.config = config;
    this.crypto = crypto;
    this.keySlot = keySlot;
  }

  /** True for an encrypted repository (format 2), whether or not it was unlocked. */
  get encrypted(): boolean {
    return this.config.encryption !== undefined;
  }

  /** The id of plaintext block `raw`: keyed in an encrypted repository, SHA-256 otherwise. */
  blockId(raw: Uint8Array): Uint8Array {
    return this.crypto ? this.crypto.blockId(raw) : blockIdOf(raw);
  }

  /** Throws PassphraseError when the repository is encrypted and was opened without its key. */
  requireKey(): void {
    if (this.encrypted && !this.crypto) throw noPassphrase(this.store.location);
  }

  /** Opens an existing repository; RepositoryNotFound when there is none. */
  static async open(store: BlobStore, options: OpenOptions = {}): Promise<Repository> {
    let bytes: Uint8Array;
    try {
      bytes = await store.load({ kind: "config", name: "config" });
    } catch (e) {
      if (e instanceof NotFound) {
        throw new RepositoryNotFound(
          `no bendsave repository at ${store.location} (no config file): check the path, or back up to it to create one`,
        );
      }
      throw e;
    }
    let config: RepoConfig;
    try {
      config = parseRepoConfig(bytes);
    } catch (e) {
      if (e instanceof NewerFormatError) {
        throw new UnsupportedFormat(
          `repository ${store.location} has format version ${e.version}, newer than this bendsave reads (${NEWEST_READABLE_FORMAT}): use a newer bendsave`,
        );
      }
      throw new IntegrityError(
        `repository config at ${store.location} is damaged (${
          (e as Error).message
        }): restore the config file from a copy of the repository`,
      );
    }
    if (!config.encryption) return new Repository(store, config);
    const passphrase = await (options.passphrase ?? passphraseSource())();
    if (passphrase === null) {
      if (options.keyOptional) return new Repository(store, config);
      throw noPassphrase(store.location);
    }
    const { masterKey, slot } = await unlock(store, config.id, passphrase, options.onWarning);
    return new Repository(store, config, await RepoCrypto.from(masterKey), slot);
  }

  /** Creates a repository in an empty store. */
  static async init(store: BlobStore, options: InitOptions = {}): Promise<Repository> {
    const kdf = options.kdf ?? DEFAULT_KDF;
    const config = newRepoConfig(randomBytes(32).toString("hex"), {
      chunker: options.chunker ?? DEFAULT_FIXED,
      compression: options.compression ?? DEFAULT_COMPRESSION,
      packSize: options.packSize ?? DEFAULT_PACK_SIZE,
      now: options.now ?? new Date(),
      ...(options.passphrase === undefined ? {} : {
        encryption: {
          aead: "aes-256-gcm",
          idMac: "hmac-sha256",
          kdf: { name: "argon2id", ...kdf },
        },
      }),
    });
    for await (const _ of store.list("manifest")) {
      throw new InvalidInput(
        `${store.location} holds manifests but no config: it is a damaged repository, not an empty directory; restore its config file`,
      );
    }
    let crypto: RepoCrypto | null = null;
    let slot: string | null = null;
    if (options.passphrase !== undefined) {
      // The key slot first: a config without a key would be a repository nobody can open.
      const master = options.masterKey
        ? await masterKeyFrom(options.masterKey)
        : await generateMasterKey();
      slot = await addKeySlot(store, config.id, master.raw, options.passphrase, {
        kdf,
        ...(options.now ? { now: options.now } : {}),
      });
      crypto = await RepoCrypto.from(master.raw);
    }
    await store.save({ kind: "config", name: "config" }, encodeRepoConfig(config), {
      exclusive: true,
    });
    await store.save(
      { kind: "guide", name: "bendsave.md" },
      new TextEncoder().encode(repositoryGuide(config)),
    );
    return new Repository(store, config, crypto, slot);
  }

  /**
   * Loads every index file into memory (once). Returns the number of index
   * files read. A damaged index file throws IntegrityError, unless
   * `onDamaged` is given: then it is reported there and skipped.
   */
  async loadIndex(onDamaged?: (name: string, error: IntegrityError) => void): Promise<number> {
    if (this.#indexLoaded) return 0;
    this.requireKey();
    let files = 0;
    for await (const f of this.store.list("index")) {
      if (!isHexId(f.name)) continue; // not an index file (a stray file someone put there)
      if (await this.#loadIndexFile(f.name, onDamaged)) files++;
    }
    this.#indexLoaded = true;
    return files;
  }

  /**
   * Brings a loaded index up to date with the repository: loads the index
   * files written since (by other writers), and returns their number; or
   * returns null, loading nothing, when an index file it loaded is gone (a
   * vacuum or `repair index` rewrote the index, and packs it listed may be
   * gone too): open the repository again then. The background WAL pusher
   * calls it under its shared lock, once per pass.
   */
  async refreshIndex(
    onDamaged?: (name: string, error: IntegrityError) => void,
  ): Promise<number | null> {
    if (!this.#indexLoaded) return await this.loadIndex(onDamaged);
    const names = new Set<string>();
    for await (const f of this.store.list("index")) if (isHexId(f.name)) names.add(f.name);
    for (const name of this.#indexFiles) if (!names.has(name)) return null;
    let files = 0;
    for (const name of names) {
      if (!this.#indexFiles.has(name) && await this.#loadIndexFile(name, onDamaged)) files++;
    }
    return files;
  }

  /** Records that index file `name`, whose packs this process wrote and indexed, is loaded. */
  noteIndexFile(name: string): void {
    this.#indexFiles.add(name);
  }

  /** Loads one index file; false when it is damaged and `onDamaged` took the error. */
  async #loadIndexFile(
    name: string,
    onDamaged: ((name: string, error: IntegrityError) => void) | undefined,
  ): Promise<boolean> {
    const bytes = await this.store.load({ kind: "index", name });
    let problem: IntegrityError | null = null;
    if (toHex(sha256(bytes)) !== name) {
      problem = new IntegrityError(
        `index file ${name} does not match its name (damaged): run bendsave repair index`,
      );
    } else {
      try {
        this.index.loadIndexFile(await this.openIndexFile(bytes, name));
      } catch (e) {
        problem = new IntegrityError(
          `index file ${name} is damaged (${(e as Error).message}): run bendsave repair index`,
        );
      }
    }
    if (problem) {
      if (!onDamaged) throw problem;
      onDamaged(name, problem);
      return false;
    }
    this.#indexFiles.add(name);
    return true;
  }

  /**
   * The plain (version 1) bytes of index file `name`: itself in an
   * unencrypted repository, its records opened in an encrypted one.
   */
  async openIndexFile(bytes: Uint8Array, name: string): Promise<Uint8Array> {
    if (!this.encrypted) return bytes;
    this.requireKey();
    return await this.crypto!.openIndexFile(bytes, name);
  }

  /** Where a block is, or an IntegrityError naming what needs it. */
  locate(id: Uint8Array, what: string): BlobLocation {
    const loc = this.index.lookup(id);
    if (!loc) {
      throw new IntegrityError(
        `block ${
          toHex(id)
        } needed by ${what} is not in the index: run bendsave verify to see which backups are affected`,
      );
    }
    return loc;
  }

  /** Reads the stored bytes of a range of a pack; missing packs become IntegrityError. */
  async loadPackRange(
    packId: Uint8Array,
    offset: number,
    length: number,
    what: string,
  ): Promise<Uint8Array> {
    const name = toHex(packId);
    let data: Uint8Array;
    try {
      data = await this.store.load({ kind: "pack", name }, { offset, length });
    } catch (e) {
      if (e instanceof NotFound) {
        throw new IntegrityError(
          `pack ${name} needed by ${what} is missing from the repository: copy it back from another copy of the repository (bendsave verify lists every affected backup)`,
        );
      }
      throw e;
    }
    if (data.length !== length) {
      throw new IntegrityError(
        `pack ${name} needed by ${what} is truncated: restore it from another copy`,
      );
    }
    return data;
  }

  /**
   * Decodes and checks one stored block: it must decompress to its raw
   * length and hash to its id.
   */
  decodeStored(id: Uint8Array, loc: BlobLocation, stored: Uint8Array, what: string): Uint8Array {
    let raw: Uint8Array;
    try {
      raw = decodeBlock(loc.codec, stored, loc.rawLength);
    } catch (e) {
      throw new IntegrityError(
        `block ${toHex(id)} in pack ${toHex(loc.packId)} needed by ${what} is damaged (${
          (e as Error).message
        })`,
      );
    }
    if (!equalBytes(this.blockId(raw), id)) {
      throw new IntegrityError(
        `block ${toHex(id)} in pack ${
          toHex(loc.packId)
        } needed by ${what} does not match its hash (damaged)`,
      );
    }
    return raw;
  }

  /** Reads, decompresses and checks one block. */
  async readBlob(id: Uint8Array, what: string): Promise<Uint8Array> {
    const loc = this.locate(id, what);
    const stored = await this.loadPackRange(loc.packId, loc.offset, loc.storedLength, what);
    return this.decodeStored(id, loc, await this.openStored(id, loc, stored, what), what);
  }

  /**
   * The stored (compressed) bytes of a block as read from its pack: itself
   * in an unencrypted repository, opened in an encrypted one
   * (IntegrityError naming the block and pack when it does not authenticate).
   */
  async openStored(
    id: Uint8Array,
    loc: BlobLocation,
    stored: Uint8Array,
    what: string,
  ): Promise<Uint8Array> {
    if (!this.crypto) return stored;
    try {
      return await this.crypto.openBlock(
        id,
        stored,
        `block ${toHex(id)} in pack ${toHex(loc.packId)} needed by ${what}`,
      );
    } catch (e) {
      if (e instanceof SealError) throw new IntegrityError(e.message);
      throw e;
    }
  }

  /** Reads and decodes a tree. */
  async loadTree(id: Uint8Array, what = "a tree"): Promise<TreeNode[]> {
    // The kind is not checked: identical bytes are stored once, whatever their kind.
    return this.parseTree(id, await this.readBlob(id, what), what);
  }

  /** Decodes the content of tree `id`, read and checked against its id elsewhere. */
  parseTree(id: Uint8Array, bytes: Uint8Array, what = "a tree"): TreeNode[] {
    try {
      return decodeTree(bytes);
    } catch (e) {
      throw new IntegrityError(`tree ${toHex(id)} (${what}) is damaged (${(e as Error).message})`);
    }
  }

  /** Names of every manifest, oldest first. */
  async manifestNames(): Promise<string[]> {
    const names: string[] = [];
    for await (const f of this.store.list("manifest")) {
      if (isManifestName(f.name)) names.push(f.name);
    }
    return names.sort(compareManifestNames);
  }

  /** Loads and checks one manifest by file name. */
  async loadManifest(name: string): Promise<ManifestRecord> {
    if (!isManifestName(name)) {
      throw new InvalidInput(
        `"${name}" is not a manifest name: use a name such as 20260101_120000.manifest`,
      );
    }
    return await this.parseManifest(name, await this.loadManifestBytes(name));
  }

  /**
   * Checks and decodes the bytes of manifest file `name`, opening its
   * sealed body in an encrypted repository.
   */
  async parseManifest(name: string, bytes: Uint8Array): Promise<ManifestRecord> {
    if (!this.encrypted) return parseManifestRecord(name, bytes);
    this.requireKey();
    let body: Uint8Array;
    try {
      const env = openManifestFile(bytes);
      if (env.version !== this.config.version) {
        throw new SyntaxError(
          `its envelope says format ${env.version}, the repository's is ${this.config.version}`,
        );
      }
      body = await this.crypto!.openManifest(name, env.body);
    } catch (e) {
      throw new IntegrityError(
        `manifest ${name} is damaged (${
          (e as Error).message
        }): restore it from another copy, or restore an older manifest`,
      );
    }
    return parseManifestRecord(name, bytes, body);
  }

  /** The bytes of manifest file `name` holding `m`: sealed in an encrypted repository. */
  async encodeManifest(name: string, m: Manifest): Promise<Uint8Array> {
    if (!this.crypto) return encodeManifestFile(m);
    return manifestEnvelope(
      m.formatVersion,
      await this.crypto.sealManifest(name, encodeManifestBody(m)),
    );
  }

  /**
   * The bytes of one manifest file, unchecked (copy keeps them verbatim).
   *
   * @throws {InvalidInput} when there is no such manifest.
   */
  async loadManifestBytes(name: string): Promise<Uint8Array> {
    try {
      return await this.store.load({ kind: "manifest", name });
    } catch (e) {
      if (e instanceof NotFound) {
        throw new InvalidInput(
          `no manifest ${name} in ${this.store.location}: run bendsave list ${this.store.location} to see the backups`,
        );
      }
      throw e;
    }
  }

  /** Every manifest, oldest first. Damaged manifests are passed to `onDamaged` and skipped. */
  async listManifests(
    onDamaged?: (name: string, error: BendsaveError) => void,
  ): Promise<ManifestRecord[]> {
    const out: ManifestRecord[] = [];
    for (const name of await this.manifestNames()) {
      try {
        out.push(await this.loadManifest(name));
      } catch (e) {
        if (onDamaged && (e instanceof IntegrityError || e instanceof UnsupportedFormat)) {
          onDamaged(name, e);
        } else throw e;
      }
    }
    return out;
  }
}

/**
 * Checks and decodes manifest file bytes; `opened` is the body of an
 * encrypted repository's manifest, already opened.
 */
export function parseManifestRecord(
  name: string,
  bytes: Uint8Array,
  opened?: Uint8Array,
): ManifestRecord {
  let manifest: Manifest;
  try {
    const env = openManifestFile(bytes);
    manifest = decodeManifest(opened ?? env.body);
    if (!isReadableVersion(manifest.formatVersion) || manifest.formatVersion !== env.version) {
      throw new SyntaxError(`format version ${manifest.formatVersion} does not match its header`);
    }
  } catch (e) {
    if (e instanceof BendsaveError) throw e;
    if (e instanceof NewerManifestError) {
      throw new UnsupportedFormat(
        `manifest ${name} has format version ${e.version}, newer than this bendsave reads (${NEWEST_READABLE_FORMAT}): use a newer bendsave`,
      );
    }
    throw new IntegrityError(
      `manifest ${name} is damaged (${
        (e as Error).message
      }): restore it from another copy, or restore an older manifest`,
    );
  }
  return { name, id: sha256(bytes), manifest, size: bytes.length };
}

/** The error of an encrypted repository opened without a passphrase. */
function noPassphrase(location: string): PassphraseError {
  return PassphraseError.wanting(
    `repository ${location} is encrypted`,
    "give its passphrase in BENDSAVE_PASSWORD, or with --password-file FILE or --password-command CMD",
  );
}
