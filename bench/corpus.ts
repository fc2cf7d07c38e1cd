/**
 * Deterministic benchmark corpus: many small files of mixed kinds in nested
 * directories (with a few empty directories and symlinks) plus a few large
 * files that are partly compressible, partly random and partly duplicated
 * (including a shifted copy, which content-defined chunking should find).
 * `mutateCorpus` then changes about 1% of the files for an incremental
 * measurement. The same seed and options always give the same bytes.
 *
 * @example
 * ```ts
 * import { generateCorpus, mutateCorpus } from "./corpus.ts";
 * const summary = generateCorpus("/tmp/corpus", { seed: 1, totalBytes: 100e6 });
 * const changes = mutateCorpus("/tmp/corpus", 1);
 * ```
 *
 * @module
 */

import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join, posix } from "node:path";
import { ContentGenerator, type ContentKind } from "./content.ts";
import { Prng, RandomBytes } from "./prng.ts";
import { walkTree } from "./tree.ts";

/** Options of {@linkcode generateCorpus}; every field has a default. */
export interface CorpusOptions {
  /** PRNG seed (default 1). */
  seed?: number;
  /** Approximate total bytes (default 700 MB = 700e6). */
  totalBytes?: number;
  /** Share of `totalBytes` held by the large files (default 0.55). */
  largeShare?: number;
  /** Number of small files (default: enough to fill the small share). */
  smallFiles?: number;
  /** Number of large files (default 4). */
  largeFiles?: number;
  /** Mean size of a large file in bytes (default: large share / largeFiles). */
  largeFileBytes?: number;
  /** Smallest small file in bytes (default 100). */
  smallMin?: number;
  /** Largest small file in bytes (default 64 KiB). */
  smallMax?: number;
  /** Number of empty directories (default 5). */
  emptyDirs?: number;
  /** Number of symlinks, including one dangling and two to directories (default 12). */
  symlinks?: number;
}

/** What {@linkcode generateCorpus} wrote. */
export interface CorpusSummary {
  /** The seed used. */
  seed: number;
  /** Regular files written. */
  files: number;
  /** Directories below the root (including empty ones). */
  dirs: number;
  /** Empty directories. */
  emptyDirs: number;
  /** Symlinks. */
  symlinks: number;
  /** Total bytes of regular files. */
  bytes: number;
  /** Small files and their bytes. */
  smallFiles: number;
  /** Bytes of the small files. */
  smallBytes: number;
  /** Small files that are exact copies of an earlier small file. */
  duplicateFiles: number;
  /** Small files of incompressible random bytes. */
  randomFiles: number;
  /** Large files. */
  largeFiles: number;
  /** Bytes of the large files. */
  largeBytes: number;
  /** Bytes of the large files that repeat content of another large file. */
  largeDuplicateBytes: number;
}

/** What {@linkcode mutateCorpus} changed. */
export interface MutationSummary {
  /** Files edited in place (same size). */
  edited: number;
  /** Files that got bytes appended. */
  appended: number;
  /** Files replaced by new content of a new size. */
  rewritten: number;
  /** Files removed. */
  deleted: number;
  /** Files added. */
  added: number;
  /** Large files that got a few 4 KiB pages rewritten in place. */
  largeEdited: number;
  /** Bytes written by all changes. */
  bytesWritten: number;
}

const KiB = 1024;
const MiB = 1024 * 1024;
/** Base modification time of the corpus: 2024-01-01T00:00:00Z. */
const BASE_TIME_S = 1_704_067_200;
const MAX_DEPTH = 6;

const EXTENSIONS: Record<SmallKind, readonly string[]> = {
  text: ["txt", "md", "rst", "html", "ts", "c"],
  license: ["txt", "md"],
  records: ["csv", "log", "tsv"],
  random: ["bin", "png", "gz", "dat"],
  duplicate: ["txt"],
};

type SmallKind = "text" | "license" | "records" | "random" | "duplicate";

function pickSmallKind(rng: Prng): SmallKind {
  const p = rng.float();
  if (p < 0.5) return "text";
  if (p < 0.58) return "license";
  if (p < 0.75) return "records";
  if (p < 0.95) return "random";
  return "duplicate";
}

function pickSegmentKind(rng: Prng): ContentKind {
  const p = rng.float();
  if (p < 0.35) return "text";
  if (p < 0.6) return "records";
  if (p < 0.65) return "zeros";
  return "random";
}

/** Sets a deterministic mtime (seconds after the base time). */
function touch(path: string, offsetS: number): void {
  const t = BASE_TIME_S + offsetS;
  utimesSync(path, t, t);
}

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/** Copies `length` bytes from `src` at `offset` to the current end of `fd`. */
function copyRange(src: string, offset: number, length: number, fd: number): void {
  const buffer = new Uint8Array(8 * MiB);
  const sfd = openSync(src, "r");
  try {
    let done = 0;
    while (done < length) {
      const n = readSync(sfd, buffer, 0, Math.min(buffer.length, length - done), offset + done);
      if (n === 0) throw new RangeError(`Short read copying from "${src}".`);
      writeAll(fd, buffer.subarray(0, n));
      done += n;
    }
  } finally {
    closeSync(sfd);
  }
}

/** Writes `length` bytes of freshly generated segments to `fd`. */
function writeSegments(
  fd: number,
  length: number,
  rng: Prng,
  gen: ContentGenerator,
  bytes: RandomBytes,
): void {
  let left = length;
  while (left > 0) {
    const size = Math.min(left, rng.logUniform(1 * MiB, 16 * MiB));
    const kind = pickSegmentKind(rng);
    // Generate in ≤ 8 MiB pieces so memory stays flat.
    let segLeft = size;
    while (segLeft > 0) {
      const n = Math.min(segLeft, 8 * MiB);
      writeAll(fd, gen.content(kind, rng, bytes, n));
      segLeft -= n;
    }
    left -= size;
  }
}

/**
 * Generates the corpus into `dir` (created if missing; must be empty).
 *
 * Layout: nested directories of small files (100 B to 64 KiB, log-uniform):
 * prose-like text, text starting with a shared licence header, CSV-like
 * records, random bytes (incompressible) and exact duplicates; `large/db/`
 * holds the large files: segments of text, records, zeros and random bytes;
 * the third large file repeats the first half of the first after a 4133-byte
 * header (a shifted duplicate), the fourth repeats a quarter of the second.
 */
export function generateCorpus(dir: string, options: CorpusOptions = {}): CorpusSummary {
  const seed = options.seed ?? 1;
  const totalBytes = options.totalBytes ?? 700e6;
  const largeShare = options.largeShare ?? 0.55;
  const largeFiles = options.largeFiles ?? 4;
  const smallMin = options.smallMin ?? 100;
  const smallMax = options.smallMax ?? 64 * KiB;
  const largeFileBytes = options.largeFileBytes ??
    (largeFiles > 0 ? Math.floor((totalBytes * largeShare) / largeFiles) : 0);
  const smallMean = (smallMax - smallMin) / Math.log(smallMax / smallMin);
  const smallFiles = options.smallFiles ??
    Math.max(1, Math.round((totalBytes - largeFiles * largeFileBytes) / smallMean));
  const emptyDirs = options.emptyDirs ?? 5;
  const symlinkCount = options.symlinks ?? 12;
  if (!(totalBytes > 0) || smallMin < 1 || smallMax < smallMin || largeFiles < 0) {
    throw new RangeError(
      `Invalid corpus options ${JSON.stringify(options)}: sizes must be positive and ordered.`,
    );
  }

  mkdirSync(dir, { recursive: true });
  if (readdirSync(dir).length > 0) {
    throw new RangeError(`Corpus directory "${dir}" is not empty; remove it or choose another.`);
  }

  const gen = new ContentGenerator(seed);
  const layout = new Prng(seed, "layout");
  const summary: CorpusSummary = {
    seed,
    files: 0,
    dirs: 0,
    emptyDirs: 0,
    symlinks: 0,
    bytes: 0,
    smallFiles: 0,
    smallBytes: 0,
    duplicateFiles: 0,
    randomFiles: 0,
    largeFiles: 0,
    largeBytes: 0,
    largeDuplicateBytes: 0,
  };

  // Directory tree: each new directory hangs under a random earlier one.
  const dirs: { path: string; depth: number }[] = [{ path: "", depth: 0 }];
  const dirCount = Math.max(4, Math.round(smallFiles / 40));
  for (let i = 1; i <= dirCount; i++) {
    let parent = layout.pick(dirs);
    while (parent.depth >= MAX_DEPTH) parent = layout.pick(dirs);
    const path = posix.join(parent.path, `${gen.word(layout)}-${i}`);
    mkdirSync(join(dir, path));
    dirs.push({ path, depth: parent.depth + 1 });
    summary.dirs++;
  }

  // Small files.
  const license = gen.text(new Prng(seed, "license"), 1500);
  const keep: Uint8Array[] = [];
  const files: string[] = [];
  const contentRng = new Prng(seed, "small-content");
  const randomBytes = new RandomBytes(seed, "small-random");
  for (let i = 0; i < smallFiles; i++) {
    let kind = pickSmallKind(layout);
    if (kind === "duplicate" && keep.length === 0) kind = "text";
    const size = layout.logUniform(smallMin, smallMax);
    let data: Uint8Array;
    switch (kind) {
      case "text":
        data = gen.text(contentRng, size);
        break;
      case "license": {
        data = new Uint8Array(license.length + size);
        data.set(license);
        data.set(gen.text(contentRng, size), license.length);
        break;
      }
      case "records":
        data = gen.records(contentRng, size);
        break;
      case "random":
        data = randomBytes.next(size);
        summary.randomFiles++;
        break;
      case "duplicate":
        data = layout.pick(keep);
        summary.duplicateFiles++;
        break;
    }
    if (keep.length < 256) keep.push(data);
    else if (layout.chance(0.01)) keep[layout.int(0, keep.length - 1)] = data;
    const parent = layout.pick(dirs).path;
    const ext = layout.pick(EXTENSIONS[kind]);
    const path = posix.join(parent, `${gen.word(layout)}-${i}.${ext}`);
    writeFileSync(join(dir, path), data);
    touch(join(dir, path), layout.int(0, 300 * 86400));
    files.push(path);
    summary.smallFiles++;
    summary.smallBytes += data.length;
  }

  // Large files.
  if (largeFiles > 0) mkdirSync(join(dir, "large", "db"), { recursive: true });
  summary.dirs += largeFiles > 0 ? 2 : 0;
  const largePaths: string[] = [];
  const largeSizes: number[] = [];
  for (let i = 0; i < largeFiles; i++) {
    const rng = new Prng(seed, `large-${i}`);
    const bytes = new RandomBytes(seed, `large-${i}`);
    const size = Math.max(
      1 * MiB,
      Math.round(largeFileBytes * (0.67 + 0.66 * rng.float())),
    );
    const path = `large/db/table-${i}.dat`;
    const fd = openSync(join(dir, path), "w");
    try {
      if (i === 2 && largeSizes[0] !== undefined) {
        // A shifted duplicate: unique header, then the first half of file 0.
        const header = 4133;
        const copy = Math.min(Math.floor(largeSizes[0] / 2), size - header);
        writeAll(fd, bytes.next(header));
        copyRange(join(dir, largePaths[0] as string), 0, copy, fd);
        writeSegments(fd, size - header - copy, rng, gen, bytes);
        summary.largeDuplicateBytes += copy;
      } else if (i === 3 && largeSizes[1] !== undefined) {
        // New data, then a quarter from the middle of file 1, then new data.
        const first = Math.floor(size / 3);
        const copy = Math.min(Math.floor(largeSizes[1] / 4), size - first);
        writeSegments(fd, first, rng, gen, bytes);
        copyRange(join(dir, largePaths[1] as string), Math.floor(largeSizes[1] / 3), copy, fd);
        writeSegments(fd, size - first - copy, rng, gen, bytes);
        summary.largeDuplicateBytes += copy;
      } else {
        writeSegments(fd, size, rng, gen, bytes);
      }
    } finally {
      closeSync(fd);
    }
    touch(join(dir, path), 200 * 86400 + i);
    largePaths.push(path);
    largeSizes.push(size);
    summary.largeFiles++;
    summary.largeBytes += size;
  }

  // Empty directories.
  const empties: string[] = [];
  for (let i = 0; i < emptyDirs; i++) {
    const path = posix.join(layout.pick(dirs).path, `empty-${i}`);
    mkdirSync(join(dir, path));
    empties.push(path);
    summary.dirs++;
    summary.emptyDirs++;
  }

  // Symlinks: relative ones to files, two to directories, one dangling.
  for (let i = 0; i < symlinkCount && files.length > 0; i++) {
    const parent = layout.pick(dirs).path;
    let target: string;
    if (i === 0) target = "does-not-exist/anywhere.txt";
    else if (i <= 2 && dirs.length > 1) {
      target = posix.relative(parent || ".", layout.pick(dirs.slice(1)).path);
    } else target = posix.relative(parent || ".", layout.pick(files));
    symlinkSync(target || ".", join(dir, parent, `link-${i}`));
    summary.symlinks++;
  }

  // Directory mtimes last, so the writes above do not reset them.
  const allDirs = [...dirs.map((d) => d.path).filter((p) => p !== ""), ...empties];
  if (largeFiles > 0) allDirs.push("large", "large/db");
  for (const path of allDirs) touch(join(dir, path), 250 * 86400);
  touch(dir, 250 * 86400);

  summary.files = summary.smallFiles + summary.largeFiles;
  summary.bytes = summary.smallBytes + summary.largeBytes;
  return summary;
}

/**
 * Changes about `fraction` (default 1%) of the regular files of a corpus,
 * deterministically for a seed: in-place edits, appends, rewrites, deletions
 * and a few new files among the small files, and a few 4 KiB page rewrites in
 * one large file (files of 1 MiB or more), as a database would. Changed files
 * get a new mtime one day after the corpus's so every tool notices them.
 */
export function mutateCorpus(dir: string, seed: number, fraction = 0.01): MutationSummary {
  if (!existsSync(dir)) throw new RangeError(`Corpus directory "${dir}" does not exist.`);
  const rng = new Prng(seed, "mutate");
  const gen = new ContentGenerator(seed);
  const bytes = new RandomBytes(seed, "mutate");
  const summary: MutationSummary = {
    edited: 0,
    appended: 0,
    rewritten: 0,
    deleted: 0,
    added: 0,
    largeEdited: 0,
    bytesWritten: 0,
  };
  const small: string[] = [];
  const large: string[] = [];
  const dirs: string[] = [""];
  for (const entry of walkTree(dir)) {
    if (entry.type === "dir") dirs.push(entry.path);
    else if (entry.type === "file") (entry.size >= MiB ? large : small).push(entry.path);
  }
  const later = 366 * 86400;

  if (large.length > 0) {
    const path = join(dir, rng.pick(large));
    const size = statSync(path).size;
    const fd = openSync(path, "r+");
    try {
      for (let i = 0; i < 8; i++) {
        const page = rng.int(0, Math.floor(size / 4096) - 1);
        const data = bytes.next(4096);
        writeSync(fd, data, 0, data.length, page * 4096);
        summary.bytesWritten += data.length;
      }
    } finally {
      closeSync(fd);
    }
    touch(path, later);
    summary.largeEdited++;
  }

  const total = small.length + large.length;
  const target = Math.max(1, Math.round(total * fraction)) - summary.largeEdited;
  const chosen = new Set<number>();
  while (chosen.size < Math.min(target, small.length)) chosen.add(rng.int(0, small.length - 1));
  for (const index of [...chosen].sort((a, b) => a - b)) {
    const path = join(dir, small[index] as string);
    const p = rng.float();
    if (p < 0.4) {
      const data = readFileSync(path);
      const len = Math.min(data.length, rng.int(1, 256));
      const at = rng.int(0, data.length - len);
      data.set(gen.text(rng, len), at);
      writeFileSync(path, data);
      summary.edited++;
      summary.bytesWritten += len;
    } else if (p < 0.65) {
      const extra = gen.text(rng, rng.int(100, 4096));
      writeFileSync(path, extra, { flag: "a" });
      summary.appended++;
      summary.bytesWritten += extra.length;
    } else if (p < 0.9) {
      const data = gen.text(rng, rng.logUniform(100, 64 * KiB));
      writeFileSync(path, data);
      summary.rewritten++;
      summary.bytesWritten += data.length;
    } else {
      rmSync(path);
      summary.deleted++;
      continue;
    }
    touch(path, later + index);
  }

  const adds = Math.max(1, Math.round(target / 10));
  for (let i = 0; i < adds; i++) {
    const parent = rng.pick(dirs);
    const path = join(dir, parent, `new-${gen.word(rng)}-${i}.txt`);
    const data = gen.text(rng, rng.logUniform(100, 64 * KiB));
    writeFileSync(path, data);
    touch(path, later);
    summary.added++;
    summary.bytesWritten += data.length;
  }
  return summary;
}
