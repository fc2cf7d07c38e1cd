/**
 * Synthetic PostgreSQL WAL files for tests: segments whose first page has a
 * valid long header (FORMAT.md, "WAL archive"), and pg_control files.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "./mod.ts";

/** A system identifier as PostgreSQL makes them (above 2^53: exercises 64-bit handling). */
export const TEST_SYSTEM_ID = "7714430012941988799";

/** Options of {@linkcode makeSegment}. */
export interface SegmentOptions {
  readonly systemId?: string;
  readonly timeline?: number;
  /** The segment number (default 1). */
  readonly segno?: number;
  /** Default 16 MiB. */
  readonly segmentSize?: number;
  /** Bytes of pseudo-random WAL after the header (default 256 KiB); the rest is zero. */
  readonly used?: number;
  readonly seed?: number;
}

/** The file name of a segment: timeline, log and segment number in 24 hex digits. */
export function segmentFileName(timeline: number, segno: number, segmentSize = 16 << 20): string {
  const perLog = 0x1_0000_0000 / segmentSize;
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");
  return hex(timeline) + hex(Math.floor(segno / perLog)) + hex(segno % perLog);
}

/** A segment's bytes and name. */
export function makeSegment(options: SegmentOptions = {}): { name: string; data: Uint8Array } {
  const size = options.segmentSize ?? 16 << 20;
  const timeline = options.timeline ?? 1;
  const segno = options.segno ?? 1;
  const data = new Uint8Array(size);
  const used = Math.min(size - 40, options.used ?? 256 * 1024);
  data.set(randomBytes(used, options.seed ?? segno * 7 + timeline), 40);
  const dv = new DataView(data.buffer);
  dv.setUint16(0, 0xd110, true); // xlp_magic of PostgreSQL 15
  dv.setUint16(2, 0x0002, true); // XLP_LONG_HEADER
  dv.setUint32(4, timeline, true);
  dv.setBigUint64(8, BigInt(segno) * BigInt(size), true); // xlp_pageaddr
  dv.setUint32(16, 0, true);
  dv.setUint32(20, 0, true);
  dv.setBigUint64(24, BigInt(options.systemId ?? TEST_SYSTEM_ID), true);
  dv.setUint32(32, size, true);
  dv.setUint32(36, 8192, true);
  return { name: segmentFileName(timeline, segno, size), data };
}

/** Writes `<dir>/global/pg_control` whose system identifier is `systemId`; returns `dir`. */
export function makeDataDir(dir: string, systemId = TEST_SYSTEM_ID): string {
  fs.mkdirSync(path.join(dir, "global"), { recursive: true });
  fs.mkdirSync(path.join(dir, "pg_wal"), { recursive: true });
  const control = new Uint8Array(8192);
  new DataView(control.buffer).setBigUint64(0, BigInt(systemId), true);
  fs.writeFileSync(path.join(dir, "global", "pg_control"), control);
  return dir;
}
