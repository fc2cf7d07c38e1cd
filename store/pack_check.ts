/**
 * Checks the bytes of one pack: its SHA-256 against its name, its layout,
 * and every block (decompressed, re-hashed). Pure CPU work, run in verify
 * workers on both cores, or in-process.
 *
 * @module
 */
import { decodeBlockTransient } from "../formats/codec.ts";
import { equalBytes, sha256, toHex } from "../formats/hash.ts";
import { BlobKind, type PackEntry, parsePack } from "../formats/pack.ts";
import { RepoCrypto } from "./repo_crypto.ts";

/** The result of checking a pack. */
export interface PackCheck {
  readonly name: string;
  /** The pack's bytes hash to its name. */
  readonly nameMatches: boolean;
  /** Why the layout (header, trailer, footer) is unreadable, or null. */
  readonly layoutError: string | null;
  /** Blocks that do not decompress or do not match their id. */
  readonly badBlocks: { id: string; message: string }[];
  readonly blocks: number;
  /** With `keepTrees`: the content of every tree block that checked good. */
  readonly trees: { id: Uint8Array; bytes: Uint8Array }[];
}

/**
 * Checks one pack held in memory; with `keepTrees`, returns the content of
 * its good tree blocks (so a tree walk need not read and check them again).
 * With `masterKey` (an encrypted repository's 64-byte master key) the
 * trailer and every block are opened first, which authenticates them, and
 * each block's keyed id is recomputed.
 */
export async function checkPack(
  name: string,
  bytes: Uint8Array,
  keepTrees = false,
  masterKey?: Uint8Array,
): Promise<PackCheck> {
  const nameMatches = toHex(sha256(bytes)) === name;
  const crypto = masterKey ? await RepoCrypto.from(masterKey) : null;
  let entries: PackEntry[];
  try {
    entries = crypto ? await crypto.packEntries(bytes, name) : parsePack(bytes);
  } catch (e) {
    return {
      name,
      nameMatches,
      layoutError: (e as Error).message,
      badBlocks: [],
      blocks: 0,
      trees: [],
    };
  }
  const badBlocks: { id: string; message: string }[] = [];
  const trees: { id: Uint8Array; bytes: Uint8Array }[] = [];
  for (const e of entries) {
    try {
      let stored = bytes.subarray(e.offset, e.offset + e.storedLength);
      if (crypto) stored = await crypto.openBlock(e.id, stored, "it");
      // Hashed, then dropped (trees are copied): no buffer per block.
      const raw = decodeBlockTransient(e.codec, stored, e.rawLength);
      if (!equalBytes(crypto ? crypto.blockId(raw) : sha256(raw), e.id)) {
        throw new SyntaxError(`content does not match its ${crypto ? "id" : "hash"}`);
      }
      // A copy: a view would send the whole pack (or decode buffer) along.
      if (keepTrees && e.kind === BlobKind.tree) trees.push({ id: e.id, bytes: raw.slice() });
    } catch (err) {
      badBlocks.push({ id: toHex(e.id), message: (err as Error).message });
    }
  }
  return { name, nameMatches, layoutError: null, badBlocks, blocks: entries.length, trees };
}
