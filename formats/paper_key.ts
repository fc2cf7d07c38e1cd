/**
 * A master key as text that a DR site can print, keep in a safe and type
 * back in (`bendsave key export` / `key import`; docs/ENCRYPTION.md, "The
 * paper key").
 *
 * ```
 * bendsave master key v1
 * repository 9f2c41d07a3e5b18
 * 1: 3f9a 0c21 77be d401 9e6f 2a10 c3d4 5b88  e1
 * 2: ...
 * 3: ...
 * 4: ...
 * ```
 *
 * Four lines of 16 key bytes each, in groups of four lowercase hex digits;
 * each line ends with a check byte, the first byte of SHA-256 of the line
 * number (one byte, 1-4) followed by the line's 16 key bytes, so that a
 * typing mistake is caught and its line named. The `repository` line holds
 * the first 16 hex digits of the repository id, so that the key is not
 * typed into the wrong repository. Parsing ignores case, extra spaces and
 * blank lines.
 *
 * @module
 */
import { fromHex, sha256, toHex } from "./hash.ts";
import { MASTER_KEY_LENGTH } from "./master_key.ts";

const HEADER = "bendsave master key v1";
const LINE_BYTES = 16;
const LINES = MASTER_KEY_LENGTH / LINE_BYTES;
/** Hex digits of the repository id the paper key names. */
const ID_PREFIX = 16;

/** A master key read back from paper. */
export interface PaperKey {
  /** The first 16 hex digits of the repository id it was exported from. */
  readonly repositoryPrefix: string;
  /** The 64-byte master key. */
  readonly key: Uint8Array;
}

/** The paper text of `masterKey` of the repository `repositoryId`. */
export function encodePaperKey(masterKey: Uint8Array, repositoryId: string): string {
  if (masterKey.length !== MASTER_KEY_LENGTH) {
    throw new RangeError(`a master key is ${MASTER_KEY_LENGTH} bytes, got ${masterKey.length}`);
  }
  if (!/^[0-9a-f]{64}$/.test(repositoryId)) {
    throw new TypeError(`repository id must be 64 lowercase hex digits: "${repositoryId}"`);
  }
  const lines = [HEADER, `repository ${repositoryId.slice(0, ID_PREFIX)}`];
  for (let i = 0; i < LINES; i++) {
    const bytes = masterKey.subarray(i * LINE_BYTES, (i + 1) * LINE_BYTES);
    const groups: string[] = [];
    for (let g = 0; g < LINE_BYTES; g += 2) groups.push(toHex(bytes.subarray(g, g + 2)));
    lines.push(`${i + 1}: ${groups.join(" ")}  ${toHex(lineCheck(i + 1, bytes))}`);
  }
  return lines.join("\n") + "\n";
}

/** Parses paper text; throws SyntaxError naming the first line that is wrong. */
export function parsePaperKey(text: string): PaperKey {
  const lines = text.split(/\r?\n/).map((l) => l.trim().toLowerCase()).filter((l) => l !== "");
  if (lines[0]?.replace(/\s+/g, " ") !== HEADER) {
    throw new SyntaxError(`not a bendsave paper key: the first line must be "${HEADER}"`);
  }
  const repo = /^repository\s+([0-9a-f]{16})$/.exec(lines[1] ?? "");
  if (!repo) {
    throw new SyntaxError(
      'the second line of the paper key must be "repository" and 16 hex digits',
    );
  }
  if (lines.length !== 2 + LINES) {
    throw new SyntaxError(
      `the paper key must have ${LINES} key lines after its header, got ${lines.length - 2}`,
    );
  }
  const key = new Uint8Array(MASTER_KEY_LENGTH);
  for (let i = 0; i < LINES; i++) {
    const line = lines[2 + i]!;
    const m = /^(\d+)\s*:\s*(.*)$/.exec(line);
    if (!m || Number(m[1]) !== i + 1) {
      throw new SyntaxError(`paper key line ${i + 1} must start with "${i + 1}:"`);
    }
    const digits = m[2]!.replace(/\s+/g, "");
    if (!/^[0-9a-f]*$/.test(digits) || digits.length !== 2 * (LINE_BYTES + 1)) {
      throw new SyntaxError(
        `paper key line ${i + 1} must hold ${2 * LINE_BYTES} hex digits and a check byte`,
      );
    }
    const bytes = fromHex(digits.slice(0, 2 * LINE_BYTES));
    if (toHex(lineCheck(i + 1, bytes)) !== digits.slice(2 * LINE_BYTES)) {
      throw new SyntaxError(`paper key line ${i + 1} has a typing mistake: its check byte differs`);
    }
    key.set(bytes, i * LINE_BYTES);
  }
  return { repositoryPrefix: repo[1]!, key };
}

function lineCheck(line: number, bytes: Uint8Array): Uint8Array {
  const b = new Uint8Array(1 + bytes.length);
  b[0] = line;
  b.set(bytes, 1);
  return sha256(b).subarray(0, 1);
}
