/**
 * The one object that knows an encrypted repository's master key
 * (FORMAT.md section 21): it computes block ids (HMAC-SHA-256 of the
 * plaintext) and seals and opens every stored object with AES-256-GCM,
 * each object kind under its own associated data. The pack writer, the
 * block readers, the index and the manifest codecs take it from
 * {@linkcode Repository.crypto}; an unencrypted repository has none.
 *
 * @module
 */
import { keyedId, type MasterKey, masterKeyFrom } from "../formats/master_key.ts";
import { openBlock, sealBlock } from "../formats/block_seal.ts";
import { seal, sealContext, unseal } from "../formats/seal.ts";
import { type PackEntry, parseTrailer, splitPack } from "../formats/pack.ts";
import { INDEX_VERSION } from "../formats/index_file.ts";

/** Index file version of encrypted repositories: the header, then the records sealed. */
export const INDEX_VERSION_SEALED = 2;
const INDEX_HEADER = 8;

const ASCII = new TextEncoder();
const TRAILER_AAD = sealContext("bendsave pack trailer");
const INDEX_AAD = sealContext("bendsave index");

/** Sealing and ids of one encrypted repository. */
export class RepoCrypto {
  /** The master key (64 bytes: seal key, then id key). */
  readonly key: MasterKey;

  private constructor(key: MasterKey) {
    this.key = key;
  }

  /** The crypto of master key `raw` (64 bytes). */
  static async from(raw: Uint8Array): Promise<RepoCrypto> {
    return new RepoCrypto(await masterKeyFrom(raw));
  }

  /** The id of a block of plaintext `raw`. */
  blockId(raw: Uint8Array): Uint8Array {
    return keyedId(this.key.idKey, raw);
  }

  /**
   * The FastCDC gear seed of the repository's parts: the first 4 bytes of
   * HMAC-SHA-256(id key, "bendsave chunker seed") as a little-endian u32.
   */
  chunkerSeed(): number {
    const h = keyedId(this.key.idKey, ASCII.encode("bendsave chunker seed"));
    return new DataView(h.buffer, h.byteOffset, 4).getUint32(0, true);
  }

  /** Seals the stored (compressed) bytes of block `id`. */
  sealBlock(id: Uint8Array, stored: Uint8Array): Promise<Uint8Array> {
    return sealBlock(this.key.seal, id, stored);
  }

  /** Opens a sealed block; `SealError` naming `what` when it does not authenticate. */
  openBlock(id: Uint8Array, sealed: Uint8Array, what: string): Promise<Uint8Array> {
    return openBlock(this.key.seal, id, sealed, what);
  }

  /** Seals a pack's trailer (its 48-byte entries). */
  sealTrailer(trailer: Uint8Array): Promise<Uint8Array> {
    return seal(this.key.seal, trailer, TRAILER_AAD);
  }

  /** Opens a sealed pack trailer. */
  openTrailer(sealed: Uint8Array, what: string): Promise<Uint8Array> {
    return unseal(this.key.seal, sealed, TRAILER_AAD, what);
  }

  /** Seals the pack records of an index file. */
  sealIndex(records: Uint8Array): Promise<Uint8Array> {
    return seal(this.key.seal, records, INDEX_AAD);
  }

  /** Opens the sealed records of an index file. */
  openIndex(sealed: Uint8Array, what: string): Promise<Uint8Array> {
    return unseal(this.key.seal, sealed, INDEX_AAD, what);
  }

  /** Seals the protobuf body of manifest file `name`. */
  sealManifest(name: string, body: Uint8Array): Promise<Uint8Array> {
    return seal(this.key.seal, body, sealContext("bendsave manifest", ASCII.encode(name)));
  }

  /** Opens the sealed body of manifest file `name`. */
  openManifest(name: string, sealed: Uint8Array): Promise<Uint8Array> {
    return unseal(
      this.key.seal,
      sealed,
      sealContext("bendsave manifest", ASCII.encode(name)),
      `manifest ${name}`,
    );
  }

  /**
   * Seals the `WalFile` message of WAL record `name` (`<system id>/<WAL
   * file name>`, its path below `wal/`), bound to that name.
   */
  sealWal(name: string, body: Uint8Array): Promise<Uint8Array> {
    return seal(this.key.seal, body, sealContext("bendsave wal", ASCII.encode(name)));
  }

  /** Opens the sealed body of WAL record `name`; SealError when it does not authenticate. */
  openWal(name: string, sealed: Uint8Array): Promise<Uint8Array> {
    return unseal(
      this.key.seal,
      sealed,
      sealContext("bendsave wal", ASCII.encode(name)),
      `WAL record ${name}`,
    );
  }

  /** An index file as stored: header `"BSIX" 02 00 00 00`, then the sealed records of `plain`. */
  async sealIndexFile(plain: Uint8Array): Promise<Uint8Array> {
    const sealed = await this.sealIndex(plain.subarray(INDEX_HEADER));
    const out = new Uint8Array(INDEX_HEADER + sealed.length);
    out.set(plain.subarray(0, 4), 0);
    out[4] = INDEX_VERSION_SEALED;
    out.set(sealed, INDEX_HEADER);
    return out;
  }

  /**
   * The plain (version 1) bytes of sealed index file `name`, for the
   * index decoders; SyntaxError or SealError when it is not one.
   */
  async openIndexFile(bytes: Uint8Array, name: string): Promise<Uint8Array> {
    if (bytes.length < INDEX_HEADER || bytes[4] !== INDEX_VERSION_SEALED) {
      throw new SyntaxError("not a sealed index file (its header is not BSIX version 2)");
    }
    const records = await this.openIndex(bytes.subarray(INDEX_HEADER), `index file ${name}`);
    const out = new Uint8Array(INDEX_HEADER + records.length);
    out.set(bytes.subarray(0, 4), 0);
    out[4] = INDEX_VERSION;
    out.set(records, INDEX_HEADER);
    return out;
  }

  /** The entries of a sealed pack held in memory (its trailer opened and checked). */
  async packEntries(pack: Uint8Array, name: string): Promise<PackEntry[]> {
    const { footer, stored } = splitPack(pack, true);
    const trailer = await this.openTrailer(stored, `pack ${name} trailer`);
    return parseTrailer(trailer, footer, pack.length, stored);
  }
}
