/**
 * A connection to a PostgreSQL server, following libpq's conventions, over
 * the npm `pg` client (node-postgres: the most used, actively maintained pure
 * JavaScript client; its URI parser is `pg-connection-string`, and `.pgpass`
 * is read with its `pgpass` package).
 *
 * What it takes, as libpq does:
 * - a URI `postgresql://[USER[:PASSWORD]@][HOST][:PORT][/DB][?host=..&port=..]`
 *   (or `postgres://`); a host starting with `/` (or given percent-encoded,
 *   `%2Fvar%2Frun%2Fpostgresql`) is a Unix socket directory;
 * - what the URI leaves out from `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
 *   `PGDATABASE`; without any host, the first of the usual socket
 *   directories (`/var/run/postgresql`, `/tmp`) that has the server's socket,
 *   else `localhost`;
 * - the password from the URI, else `PGPASSWORD`, else `~/.pgpass`
 *   (`PGPASSFILE`; a socket connection also matches the `localhost` lines,
 *   as in libpq).
 *
 * Errors are one line and never contain the password.
 *
 * @module
 */
// @ts-types="./_pg.d.ts"
import pg from "pg";
import type { Client } from "./_pg.d.ts";
import { parse as parseUri } from "pg-connection-string";
import pgpass from "pgpass";
import fs from "node:fs";
import path from "node:path";
import { AccessDenied, DatabaseError, InvalidInput } from "../../store/errors.ts";

/** True when `s` is a PostgreSQL connection URI (`postgresql://` or `postgres://`). */
export function isPgUri(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

/** Where a connection goes, without the password. */
export interface PgTarget {
  /** A host name or address, or a Unix socket directory (starts with `/`). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** `user@host:port/database`, for messages. */
  readonly shown: string;
}

/** A resolved connection: where, and the password when one was given (never shown). */
interface Resolved extends PgTarget {
  readonly password: string | undefined;
  /** Other URI parameters for the client (sslmode, application_name, ...). */
  readonly extra: Record<string, unknown>;
}

const SOCKET_DIRS = ["/var/run/postgresql", "/tmp"];

/** The URI with its password replaced by `***`, for messages. */
export function redactUri(uri: string): string {
  return uri.replace(/^(postgres(?:ql)?:\/\/[^:/@?#]*):[^@/?#]*@/i, "$1:***@")
    .replace(/([?&]password=)[^&#]*/gi, "$1***");
}

/**
 * Resolves a URI with the PG* environment variables, as libpq does.
 *
 * @throws {InvalidInput} for a URI that cannot be parsed or a bad port.
 *
 * @example
 * ```ts
 * import { resolvePgUri } from "./connection.ts";
 * const t = resolvePgUri("postgresql://app@/shop?host=/run/pg&port=5433", {});
 * t.shown; // "app@/run/pg:5433/shop"
 * ```
 */
export function resolvePgUri(
  uri: string,
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
): PgTarget {
  const { password: _, extra: __, ...target } = resolve(uri, env);
  return target;
}

function resolve(uri: string, env: Readonly<Record<string, string | undefined>>): Resolved {
  if (!isPgUri(uri)) {
    throw new InvalidInput(
      `"${redactUri(uri)}" is not a PostgreSQL URI: give postgresql://USER@HOST:PORT/DB`,
    );
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = { ...parseUri(uri) } as Record<string, unknown>;
  } catch (e) {
    throw new InvalidInput(
      `PostgreSQL URI "${redactUri(uri)}" cannot be parsed (${
        scrub((e as Error).message, [])
      }): give postgresql://USER@HOST:PORT/DB`,
    );
  }
  const str = (v: unknown): string | undefined => typeof v === "string" && v !== "" ? v : undefined;
  const {
    host: h,
    port: p,
    user: u,
    password: pw,
    database: d,
    options: _options,
    ...extra
  } = parsed;
  const portText = str(p) ?? str(env.PGPORT) ?? "5432";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidInput(
      `PostgreSQL port "${portText}" in "${redactUri(uri)}" is not a port number (1 to 65535)`,
    );
  }
  const user = str(u) ?? str(env.PGUSER) ?? str(env.USER) ?? str(env.LOGNAME) ?? "postgres";
  const database = str(d) ?? str(env.PGDATABASE) ?? user;
  let host = str(h) ?? str(env.PGHOST);
  if (host === undefined) {
    host = SOCKET_DIRS.find((dir) => fs.existsSync(path.join(dir, `.s.PGSQL.${port}`))) ??
      "localhost";
  }
  const password = str(pw) ?? str(env.PGPASSWORD);
  return {
    host,
    port,
    user,
    database,
    shown: `${user}@${host}:${port}/${database}`,
    password,
    extra,
  };
}

/** Replaces every secret in `text` by `***`. */
function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text.split("\n")[0]!.trim();
  for (const s of secrets) {
    if (!s) continue;
    out = out.replaceAll(s, "***");
    const enc = encodeURIComponent(s);
    if (enc !== s) out = out.replaceAll(enc, "***");
  }
  return out;
}

/** The password of `.pgpass` for a connection, or undefined. */
function pgpassPassword(t: PgTarget): Promise<string | undefined> {
  const lookup = (host: string) =>
    new Promise<string | undefined>((resolve) => {
      try {
        pgpass(
          { host, port: t.port, database: t.database, user: t.user },
          (pass: string | undefined) => resolve(pass),
        );
      } catch {
        resolve(undefined);
      }
    });
  return (async () => {
    const found = await lookup(t.host);
    // libpq: a Unix socket connection also matches the lines for "localhost".
    if (found !== undefined || !t.host.startsWith("/")) return found;
    return await lookup("localhost");
  })();
}

/** Options of {@linkcode PgConnection.connect}. */
export interface PgConnectOptions {
  /** Environment to resolve the PG* variables from (default: the process's). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Milliseconds to wait for the connection (default 10 000). */
  readonly timeoutMs?: number;
  /** `application_name` of the session (default `bendsave`). */
  readonly applicationName?: string;
}

/**
 * One session on a PostgreSQL server. A base backup holds one open from
 * `pg_backup_start` to `pg_backup_stop`.
 *
 * @example
 * ```ts ignore
 * import { PgConnection } from "./connection.ts";
 * const c = await PgConnection.connect("postgresql://postgres@/postgres?host=/run/postgresql");
 * const v = await c.value<string>("SHOW server_version_num");
 * await c.close();
 * ```
 */
export class PgConnection {
  /** Where it is connected, without the password (for messages). */
  readonly target: PgTarget;
  readonly #client: Client;
  readonly #secrets: readonly (string | undefined)[];
  #lost: Error | null = null;

  private constructor(target: PgTarget, client: Client, secrets: (string | undefined)[]) {
    this.target = target;
    this.#client = client;
    this.#secrets = secrets;
  }

  /**
   * Connects to the server of `uri`.
   *
   * @throws {InvalidInput} for a URI that cannot be used.
   * @throws {AccessDenied} when the server refuses the user or password.
   * @throws {DatabaseError} when the server cannot be reached or refuses the connection.
   */
  static async connect(uri: string, options: PgConnectOptions = {}): Promise<PgConnection> {
    const env = options.env ?? Deno.env.toObject();
    const r = resolve(uri, env);
    const { password: _, extra: __, ...target } = r;
    let fromFile: string | undefined;
    const client = new pg.Client({
      ...r.extra,
      host: r.host,
      port: r.port,
      user: r.user,
      database: r.database,
      // Asked for only when the server wants a password: the URI's, PGPASSWORD, ~/.pgpass.
      // (pg takes undefined as "no password" and then fails the login.)
      password: (async () => {
        if (r.password !== undefined) return r.password;
        fromFile = await pgpassPassword(target);
        return fromFile;
      }) as () => Promise<string>,
      connectionTimeoutMillis: options.timeoutMs ?? 10_000,
      application_name: options.applicationName ?? "bendsave",
    });
    const conn = new PgConnection(target, client, [r.password]);
    client.on("error", (e: Error) => {
      conn.#lost = e;
    });
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => {});
      throw conn.#connectError(e, fromFile);
    }
    // The session stays open (idle) while a backup reads the data directory.
    await conn.query(
      "SET statement_timeout = 0; SET idle_session_timeout = 0; SET idle_in_transaction_session_timeout = 0",
    );
    return conn;
  }

  #connectError(e: unknown, fromFile: string | undefined): Error {
    const secrets = [...this.#secrets, fromFile];
    const err = e as { code?: string; message?: string };
    const msg = scrub(String(err.message ?? e), secrets);
    const where = this.target.shown;
    if (err.code === "28P01" || err.code === "28000") {
      return new AccessDenied(
        `PostgreSQL at ${where} refused the login (${msg}): check the user and password (URI, PGPASSWORD or ~/.pgpass) and pg_hba.conf`,
      );
    }
    if (/client password must be a string|password authentication|no password/i.test(msg)) {
      return new AccessDenied(
        `PostgreSQL at ${where} asks for a password and none was given: put it in ~/.pgpass, PGPASSWORD or the URI`,
      );
    }
    if (err.code === "3D000") {
      return new InvalidInput(
        `PostgreSQL at ${where}: database "${this.target.database}" does not exist: name an existing database in the URI`,
      );
    }
    const net: Record<string, string> = {
      ECONNREFUSED: "connection refused",
      ENOENT: "no server socket there",
      ENOTFOUND: "unknown host",
      EAI_AGAIN: "unknown host",
      ETIMEDOUT: "timed out",
      EHOSTUNREACH: "host unreachable",
      EACCES: "permission denied on the socket",
    };
    const why = (err.code && net[err.code]) ??
      (/timeout/i.test(msg) ? "timed out" : msg || "unknown error");
    return new DatabaseError(
      `cannot connect to PostgreSQL at ${where} (${why}): check that the server runs and the host, port and socket directory`,
    );
  }

  /** Runs SQL and returns its rows (the last statement's, for several). */
  async query<T = Record<string, unknown>>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<T[]> {
    if (this.#lost) throw this.#queryError(this.#lost, sql);
    try {
      const r = await this.#client.query(sql, params as unknown[]);
      const last = Array.isArray(r) ? r[r.length - 1] : r;
      return (last?.rows ?? []) as T[];
    } catch (e) {
      throw this.#queryError(e, sql);
    }
  }

  /** The first column of the first row. */
  async value<T = string>(sql: string, params: readonly unknown[] = []): Promise<T> {
    const rows = await this.query<Record<string, unknown>>(sql, params);
    const row = rows[0];
    if (!row) {
      throw new DatabaseError(`PostgreSQL at ${this.target.shown}: "${sql}" returned no row`);
    }
    return Object.values(row)[0] as T;
  }

  #queryError(e: unknown, sql: string): Error {
    if (e instanceof DatabaseError) return e;
    const msg = scrub(String((e as Error).message ?? e), this.#secrets);
    const lost = this.#lost !== null || /terminated|Connection.*(closed|ended)/i.test(msg);
    const what = sql.length > 60 ? sql.slice(0, 57) + "..." : sql;
    return new DatabaseError(
      lost
        ? `the connection to PostgreSQL at ${this.target.shown} was lost (${msg}) during "${what}": run the backup again`
        : `PostgreSQL at ${this.target.shown} failed "${what}": ${msg}`,
    );
  }

  /** Closes the session (a base backup still running on it is aborted by the server). */
  async close(): Promise<void> {
    await this.#client.end().catch(() => {});
  }
}
