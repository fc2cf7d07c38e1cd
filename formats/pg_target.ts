/**
 * PostgreSQL recovery targets as bendsave takes them (`restore --as-of`,
 * `--target-lsn`): pure parsing, no I/O.
 *
 * - A time, in RFC 3339 (`2026-12-01T14:02:00Z`, `2026-12-01T16:02:00.5+02:00`)
 *   or as PostgreSQL prints a `timestamptz` (`2026-12-01 14:02:00.123456+00`,
 *   `2026-12-01 16:02:00+02`, `2026-12-01 19:32:00+05:30`). Microseconds are
 *   kept: PostgreSQL's commit times have them.
 * - `latest`: the end of the archived WAL.
 * - An LSN, `X/Y` in hexadecimal (`0/3000028`).
 *
 * @module
 */

/** A recovery target. */
export type RecoveryTarget =
  | { readonly kind: "latest" }
  | {
    readonly kind: "time";
    /** Microseconds since the Unix epoch (UTC). */
    readonly micros: bigint;
    /** The same instant as PostgreSQL reads it back: `YYYY-MM-DD HH:MM:SS.ffffff+00`. */
    readonly text: string;
  }
  | { readonly kind: "lsn"; readonly lsn: bigint; readonly text: string };

const TIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)$/;

/**
 * Parses a time in RFC 3339 or PostgreSQL's `timestamptz` output. A time
 * without a zone is refused: which moment it means would depend on a
 * setting nobody sees.
 *
 * @example
 * ```ts
 * import { parseRecoveryTime } from "./pg_target.ts";
 * parseRecoveryTime("2026-12-01 16:02:00.5+02").text; // "2026-12-01 14:02:00.500000+00"
 * ```
 */
export function parseRecoveryTime(text: string): RecoveryTarget & { kind: "time" } {
  const m = TIME.exec(text.trim());
  if (!m) {
    throw new SyntaxError(
      `"${text}" is not a time: give RFC 3339 (2026-12-01T14:02:00Z) or a timestamptz as PostgreSQL prints it (2026-12-01 14:02:00.123456+00), with its zone`,
    );
  }
  const [, y, mo, d, h, mi, s, frac = "", zone] = m;
  const fields = [Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s)];
  const [Y, M, D, H, I, S] = fields as [number, number, number, number, number, number];
  const ms = Date.UTC(Y, M - 1, D, H, I, S);
  const back = new Date(ms);
  if (
    M < 1 || M > 12 || back.getUTCDate() !== D || back.getUTCMonth() !== M - 1 || H > 23 ||
    I > 59 || S > 59
  ) {
    throw new RangeError(`"${text}" is not a valid date and time: check the numbers`);
  }
  let offsetMin = 0;
  if (zone !== "Z" && zone !== "z") {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone!)!;
    const hours = Number(z[2]);
    const minutes = Number(z[3] ?? "0");
    if (hours > 15 || minutes > 59) throw new RangeError(`"${text}" has an invalid zone offset`);
    offsetMin = (z[1] === "-" ? -1 : 1) * (hours * 60 + minutes);
  }
  const micros = BigInt(ms - offsetMin * 60_000) * 1000n + BigInt(frac.padEnd(6, "0"));
  return { kind: "time", micros, text: formatMicros(micros) };
}

/** Microseconds since the epoch as `YYYY-MM-DD HH:MM:SS.ffffff+00`. */
export function formatMicros(micros: bigint): string {
  const ms = Number(micros / 1000n);
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const sub = ((micros % 1_000_000n) + 1_000_000n) % 1_000_000n;
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(sub).padStart(6, "0")}+00`;
}

/** Microseconds since the epoch of an RFC 3339 or timestamptz text (see {@linkcode parseRecoveryTime}). */
export function timeMicros(text: string): bigint {
  return parseRecoveryTime(text).micros;
}

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/**
 * Parses an LSN, `X/Y` in hexadecimal, into a 64-bit number.
 *
 * @example
 * ```ts
 * import { parseLsn } from "./pg_target.ts";
 * parseLsn("1/2A"); // 0x10000002an
 * ```
 */
export function parseLsn(text: string): bigint {
  const m = LSN.exec(text.trim());
  if (!m) {
    throw new SyntaxError(
      `"${text}" is not an LSN: give it as PostgreSQL prints one, e.g. 0/3000028`,
    );
  }
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** An LSN as PostgreSQL prints it (`X/Y`, upper-case hexadecimal, no leading zeros). */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${
    (lsn & 0xffffffffn).toString(16).toUpperCase()
  }`;
}

/** Parses what `--as-of` (a time or `latest`) and `--target-lsn` take. */
export function parseRecoveryTarget(
  options: { asOf?: string; targetLsn?: string },
): RecoveryTarget {
  if (options.asOf !== undefined && options.targetLsn !== undefined) {
    throw new TypeError("give either --as-of or --target-lsn, not both");
  }
  if (options.targetLsn !== undefined) {
    const lsn = parseLsn(options.targetLsn);
    return { kind: "lsn", lsn, text: formatLsn(lsn) };
  }
  if (options.asOf === undefined || options.asOf.trim().toLowerCase() === "latest") {
    return { kind: "latest" };
  }
  return parseRecoveryTime(options.asOf);
}
