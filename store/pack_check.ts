/**
 * Checks the bytes of one pack: its SHA-256 against its name, its layout,
 * and every block (decompressed, re-hashed). Pure CPU work, run in verify
 * workers on both cores, or in-process.
 *
 * @module
 */
import { decodeBlock } from "../formats/codec.ts";
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
 */
export function checkPack(name: string, bytes: Uint8Array, keepTrees = false): PackCheck {
  const nameMatches = toHex(sha256(bytes)) === name;
  let entries;
  try {
    entries = parsePack(bytes);
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
      const raw = decodeBlock(
        e.codec,
        bytes.subarray(e.offset, e.offset + e.storedLength),
        e.rawLength,
      );
      if (!equalBytes(sha256(raw), e.id)) throw new SyntaxError("content does not match its hash");
      // A copy: a view would send the whole pack (or decode buffer) along.
      if (keepTrees && e.kind === BlobKind.tree) trees.push({ id: e.id, bytes: raw.slice() });
    } catch (err) {
      badBlocks.push({ id: toHex(e.id), message: (err as Error).message });
    }
  }
  return { name, nameMatches, layoutError: null, badBlocks, blocks: entries.length, trees };
}

/**
 * Checks one pack of an encrypted repository held in memory: its SHA-256
 * against its name, its sealed trailer, and every block (opened, which
 * authenticates it, decompressed, its keyed id recomputed). `masterKey` is
 * the repository's 64-byte master key.
 */
export async function checkSealedPack(
  name: string,
  bytes: Uint8Array,
  masterKey: Uint8Array,
  keepTrees = false,
): Promise<PackCheck> {
  const nameMatches = toHex(sha256(bytes)) === name;
  const crypto = await RepoCrypto.from(masterKey);
  let entries: PackEntry[];
  try {
    entries = await crypto.packEntries(bytes, name);
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
      const stored = await crypto.openBlock(
        e.id,
        bytes.subarray(e.offset, e.offset + e.storedLength),
        "it",
      );
      const raw = decodeBlock(e.codec, stored, e.rawLength);
      if (!equalBytes(crypto.blockId(raw), e.id)) {
        throw new SyntaxError("content does not match its id");
      }
      if (keepTrees && e.kind === BlobKind.tree) trees.push({ id: e.id, bytes: raw.slice() });
    } catch (err) {
      badBlocks.push({ id: toHex(e.id), message: (err as Error).message });
    }
  }
  return { name, nameMatches, layoutError: null, badBlocks, blocks: entries.length, trees };
}
