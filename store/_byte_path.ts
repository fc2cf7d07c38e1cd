/**
 * File system calls on paths whose names need not be valid UTF-8 (Linux
 * names are bytes). A path is a string when it is valid UTF-8, else the
 * exact bytes. bun and Node take such byte paths in `node:fs` as Buffers;
 * Deno's `node:fs` converts every path to a string (an invalid byte becomes
 * U+FFFD, so the file is not found), so on Deno the few calls a backup and a
 * restore need on such paths go to the C library through `Deno.dlopen`
 * (loaded only when a byte path is first met).
 *
 * @module
 */
import fs from "node:fs";
import { Buffer } from "node:buffer";

/** A path: a string when it is valid UTF-8, otherwise its exact bytes. */
export type BytePath = string | Uint8Array;

const utf8 = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lossy = new TextDecoder("utf-8", { ignoreBOM: true });

/** `dir/name` as a string when both are strings, else as bytes. */
export function joinPath(dir: BytePath, name: BytePath): BytePath {
  if (typeof dir === "string" && typeof name === "string") {
    return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
  }
  const d = typeof dir === "string" ? utf8.encode(dir) : dir;
  const n = typeof name === "string" ? utf8.encode(name) : name;
  const slash = d.length > 0 && d[d.length - 1] !== 0x2f ? 1 : 0;
  const out = new Uint8Array(d.length + slash + n.length);
  out.set(d);
  if (slash) out[d.length] = 0x2f;
  out.set(n, d.length + slash);
  return out;
}

/** The path for messages (lossy for bytes that are not UTF-8). */
export function displayPath(p: BytePath): string {
  return typeof p === "string" ? p : lossy.decode(p);
}

/** The string form of `p` when it is valid UTF-8, else null. */
function asString(p: BytePath): string | null {
  if (typeof p === "string") return p;
  try {
    return strict.decode(p);
  } catch {
    return null;
  }
}

const onDeno = typeof (globalThis as { Deno?: { dlopen?: unknown } }).Deno?.dlopen === "function" &&
  !("Bun" in globalThis);

/** The path to give `node:fs`, or null when only the C library can reach it (Deno). */
function nodePath(p: BytePath): string | Buffer | null {
  const s = asString(p);
  if (s !== null) return s;
  return onDeno ? null : Buffer.from(p as Uint8Array);
}

/**
 * The exact names in directory `dir`, in no particular order.
 *
 * @example
 * ```ts ignore
 * import { listNames } from "./_byte_path.ts";
 * listNames("/tmp"); // [Uint8Array [ 97, 255, 98 ], ...]
 * ```
 */
export function listNames(dir: BytePath): Uint8Array[] {
  const np = nodePath(dir);
  if (np === null) return libc().list(dir);
  const names = fs.readdirSync(np, { encoding: "buffer" }) as unknown as Buffer[];
  const listed = names.map((n) => new Uint8Array(n));
  // Deno lists an invalid name as U+FFFD (EF BF BD): list again through libc for the exact bytes.
  if (!onDeno || !names.some((n) => n.includes(REPLACEMENT))) return listed;
  let lib: Libc;
  try {
    lib = libc();
  } catch {
    return listed; // no FFI (permission): the lossy names, as before format 1.2
  }
  return lib.list(dir);
}

const REPLACEMENT = Buffer.from([0xef, 0xbf, 0xbd]);

/** `lstat` of `p` (only the fields a backup uses are set for a Deno byte path). */
export function lstatPath(p: BytePath): fs.Stats {
  const np = nodePath(p);
  return np !== null ? fs.lstatSync(np) : libc().lstat(p as Uint8Array);
}

/** The target of symlink `p` (lossy when it is not UTF-8). */
export function readlinkPath(p: BytePath): string {
  const np = nodePath(p);
  return np !== null ? fs.readlinkSync(np) : libc().readlink(p as Uint8Array);
}

/** Opens file `p` for reading; returns a `node:fs` descriptor. */
export function openRead(p: BytePath): number {
  const np = nodePath(p);
  return np !== null ? fs.openSync(np, "r") : libc().openRead(p as Uint8Array);
}

/** Renames `from` to `to` (either may be bytes). */
export function renamePath(from: BytePath, to: BytePath): void {
  const a = nodePath(from);
  const b = nodePath(to);
  if (a !== null && b !== null) fs.renameSync(a, b);
  else libc().rename(from, to);
}

// ---------------------------------------------------------------- Deno: libc

interface Libc {
  list(dir: BytePath): Uint8Array[];
  lstat(p: Uint8Array): fs.Stats;
  readlink(p: Uint8Array): string;
  openRead(p: Uint8Array): number;
  rename(from: BytePath, to: BytePath): void;
}

let loaded: Libc | null = null;

function libc(): Libc {
  loaded ??= loadLibc();
  return loaded;
}

const ERRNO: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  13: "EACCES",
  17: "EEXIST",
  18: "EXDEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  30: "EROFS",
  36: "ENAMETOOLONG",
  39: "ENOTEMPTY",
  40: "ELOOP",
  122: "EDQUOT",
};

function loadLibc(): Libc {
  const D = (globalThis as unknown as { Deno: typeof Deno }).Deno;
  const lib = D.dlopen(
    "libc.so.6",
    {
      opendir: { parameters: ["buffer"], result: "pointer" },
      readdir: { parameters: ["pointer"], result: "pointer" },
      closedir: { parameters: ["pointer"], result: "i32" },
      statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
      readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
      open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      rename: { parameters: ["buffer", "buffer"], result: "i32" },
      __errno_location: { parameters: [], result: "pointer" },
    } as const,
  );
  const s = lib.symbols;
  const cstr = (p: BytePath): Uint8Array<ArrayBuffer> => {
    const b = typeof p === "string" ? utf8.encode(p) : p;
    const out = new Uint8Array(b.length + 1);
    out.set(b);
    return out;
  };
  const fail = (op: string, p: BytePath): never => {
    const errno = new D.UnsafePointerView(s.__errno_location()!).getInt32(0);
    const code = ERRNO[errno] ?? `errno ${errno}`;
    const e = new Error(`${code}: ${op} '${displayPath(p)}'`) as Error & { code: string };
    e.code = code;
    throw e;
  };
  const AT_FDCWD = -100;
  const AT_SYMLINK_NOFOLLOW = 0x100;
  const STATX_BASIC_STATS = 0x7ff;
  const O_RDONLY = 0;
  const O_CLOEXEC = 0o2000000;
  const S_IFMT = 0o170000;
  return {
    list(dir) {
      const d = s.opendir(cstr(dir));
      if (d === null) fail("opendir", dir);
      const names: Uint8Array[] = [];
      try {
        for (;;) {
          const ent = s.readdir(d);
          if (ent === null) break;
          // struct dirent (64-bit Linux): d_ino 8, d_off 8, d_reclen 2, d_type 1, then d_name.
          const view = new D.UnsafePointerView(ent);
          const bytes: number[] = [];
          for (let i = 19;; i++) {
            const c = view.getUint8(i);
            if (c === 0) break;
            bytes.push(c);
          }
          const isDot = bytes.length <= 2 && bytes.every((c) => c === 0x2e);
          if (!isDot) names.push(new Uint8Array(bytes));
        }
      } finally {
        s.closedir(d);
      }
      return names;
    },
    lstat(p) {
      // struct statx has one layout on every Linux architecture.
      const buf = new Uint8Array(256);
      if (s.statx(AT_FDCWD, cstr(p), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buf) !== 0) {
        fail("lstat", p);
      }
      const v = new DataView(buf.buffer);
      const mode = v.getUint16(28, true);
      const time = (at: number) =>
        Number(v.getBigInt64(at, true)) * 1000 + v.getUint32(at + 8, true) / 1e6;
      const makedev = (major: number, minor: number) =>
        Number(
          ((BigInt(major) & 0xfffff000n) << 32n) | ((BigInt(major) & 0xfffn) << 8n) |
            ((BigInt(minor) & 0xffffff00n) << 12n) | (BigInt(minor) & 0xffn),
        );
      const type = mode & S_IFMT;
      const st = {
        mode,
        nlink: v.getUint32(16, true),
        uid: v.getUint32(20, true),
        gid: v.getUint32(24, true),
        ino: Number(v.getBigUint64(32, true)),
        size: Number(v.getBigUint64(40, true)),
        blocks: Number(v.getBigUint64(48, true)),
        blksize: v.getUint32(4, true),
        atimeMs: time(64),
        ctimeMs: time(96),
        mtimeMs: time(112),
        rdev: makedev(v.getUint32(128, true), v.getUint32(132, true)),
        dev: makedev(v.getUint32(136, true), v.getUint32(140, true)),
        isFile: () => type === 0o100000,
        isDirectory: () => type === 0o040000,
        isSymbolicLink: () => type === 0o120000,
        isFIFO: () => type === 0o010000,
        isSocket: () => type === 0o140000,
        isBlockDevice: () => type === 0o060000,
        isCharacterDevice: () => type === 0o020000,
      };
      return st as unknown as fs.Stats;
    },
    readlink(p) {
      const buf = new Uint8Array(4096);
      const n = Number(s.readlink(cstr(p), buf, BigInt(buf.length)));
      if (n < 0) fail("readlink", p);
      return lossy.decode(buf.subarray(0, n));
    },
    openRead(p) {
      const fd = s.open(cstr(p), O_RDONLY | O_CLOEXEC, 0);
      if (fd < 0) fail("open", p);
      try {
        // The same open file, as a node:fs descriptor.
        return fs.openSync(`/proc/self/fd/${fd}`, "r");
      } finally {
        s.close(fd);
      }
    },
    rename(from, to) {
      if (s.rename(cstr(from), cstr(to)) !== 0) fail("rename", to);
    },
  };
}
