/**
 * The background pusher of `wal-push --async`: one long-lived process per
 * spool directory (its lock, store/wal_spool.ts) that pushes the files the
 * foregrounds ask for (`<wal>.req`) and, ahead of them while they keep
 * asking, the WAL files PostgreSQL has marked ready
 * (`pg_wal/archive_status/<wal>.ready`), in name order, several at a time over one open repository, writing each file's
 * `.ok` (after its record is durable: {@linkcode pushWal} resolved) or
 * `.error`. Each pass over the files asked for is one
 * {@linkcode WalPushSession}: one shared lock, the index brought up to date
 * once, and the packs and index files of its pushes written together (a
 * group commit); each file is read, hashed and compressed on a pool thread
 * (`wal.encode`). It exits after being idle for a few seconds, or when its spool
 * goes away. On an encrypted repository it runs the KDF once per run (the
 * key stays in memory only, store/keys.ts), where a synchronous `wal-push`
 * runs it for every WAL file.
 *
 * Killed at any point (kill -9 included), it loses nothing: a push is
 * crash-safe on its own (records are the commit point), a status is written
 * only after what it states holds, and a request is removed only after its
 * status is written, so the next pusher takes it again.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { BlobStore } from "./drivers/types.ts";
import type { CancelOptions } from "./cancel.ts";
import { PassphraseError } from "./errors.ts";
import { pushWal, type PushWalOptions } from "./wal_archive.ts";
import { WalPushSession } from "./wal_push_session.ts";
import { readErrorCode, unreadableWal } from "./wal_file_read.ts";
import { ENGINE_JOBS, type EnginePool } from "./worker_jobs.ts";
import { WorkerPool } from "./worker_pool.ts";
import {
  acquireSpoolLock,
  ensureSpool,
  fileIdentity,
  type PushOk,
  pushOkTrusted,
  type PushRequest,
  readSpoolJson,
  removeSpoolFile,
  removeStaleTemps,
  sleep,
  SPOOL_HEARTBEAT_MS,
  spoolNames,
  writeSpoolFile,
} from "./wal_spool.ts";

/** The pusher pushes ready files ahead only within this long of a request. */
const AHEAD_WHILE_ASKED_MS = 2_000;

/** Options of {@linkcode runPushDaemon}. */
export interface PushDaemonOptions extends CancelOptions {
  readonly spool: string;
  /** The repository as the command named it: requests for another are left alone. */
  readonly repository: string;
  /** The directory of the WAL files (`pg_wal`), whose `archive_status/*.ready` it pushes ahead. */
  readonly walDir: string;
  /** Opens the repository (once per run of the pusher). */
  readonly open: () => Promise<BlobStore>;
  /** The push's options (system identifier, data directory, lock wait). */
  readonly push?: Omit<PushWalOptions, "name" | "signal" | "onEvent">;
  /** How many ready files ahead of the requests one pass takes (default 16). */
  readonly queue?: number;
  /**
   * Pushes at once (default 4: two per thread of a 2-core machine, so one
   * push's flushes to disk overlap another's hashing and compressing).
   */
  readonly lanes?: number;
  /** Exit after this long without work (default 5 s). */
  readonly idleMs?: number;
  /** Worker threads hashing and compressing (default: one per core; 0: on the main thread). */
  readonly workers?: number;
  /** The exit code an error maps to, recorded in `.error` (the CLI's mapping). */
  readonly exitCodeOf: (e: unknown) => number;
}

/** What a pusher's run did. */
export interface PushDaemonResult {
  /** False when another live pusher held the spool (this one did nothing). */
  readonly ran: boolean;
  readonly pushed: number;
  readonly failed: number;
  /** The pool's threads that hashed and compressed segments (1 when it ran on the main thread). */
  readonly threads: number;
}

function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0]!;
}

/** Runs the background pusher until it is idle; see the module documentation. */
export async function runPushDaemon(options: PushDaemonOptions): Promise<PushDaemonResult> {
  const { spool } = options;
  ensureSpool(spool);
  const lock = acquireSpoolLock(spool, "push", options.repository);
  if (!lock) return { ran: false, pushed: 0, failed: 0, threads: 0 };
  const heartbeat = setInterval(() => lock.touch(), SPOOL_HEARTBEAT_MS);
  const queue = options.queue ?? 16;
  const lanes = Math.max(1, options.lanes ?? 4);
  const idleMs = options.idleMs ?? 5_000;
  const statusDir = path.join(options.walDir, "archive_status");
  let store: BlobStore | null = null;
  // Segments are hashed and compressed on worker threads (one per core), so the
  // pushes side by side use every core; started with the first push.
  let pool: Promise<EnginePool> | null = null;
  const threads = new Set<number>();
  /**
   * The reading, hashing and compressing of push lane `lane`: always on pool
   * thread `lane` (modulo the threads), so the lanes' segments spread over the
   * threads (the pool's default, the first thread with room, queued two
   * lanes on the first).
   */
  const encoderFor = (lane: number): NonNullable<PushWalOptions["encodeFile"]> => async (input) => {
    const p = await (pool ??= WorkerPool.start(ENGINE_JOBS, {
      ...(options.workers === undefined ? {} : { workers: options.workers }),
      name: "compressor",
      fallback: "compressing on the pusher's main thread",
    }));
    const job = await p.submit("wal.encode", input, { lane });
    threads.add(job.lane);
    return await job.result;
  };
  let pushed = 0;
  let failed = 0;
  // A passphrase that does not open the repository (or none given) fails every push the
  // same way: the first failure answers the rest at once, and the pusher then stops.
  let keyError: PassphraseError | null = null;
  let lastWork = Date.now();
  let lastRequest = 0;
  const inFlight = new Set<string>();
  const okFor = (name: string, file: string) => {
    const ok = readSpoolJson<PushOk>(spool, `${name}.ok`);
    return ok !== null && ok.name === name && ok.repository === options.repository &&
      pushOkTrusted(ok, file, false);
  };

  // One session per pass: the lock, the index and the commits of the pass's pushes
  // (store/wal_push_session.ts); kept from pass to pass unless a commit failed.
  let session: WalPushSession | null = null;
  const beginPass = async () => {
    store ??= await options.open();
    if (!session || session.spent) {
      const passphrase = options.push?.passphrase;
      session = await WalPushSession.open(store, {
        ...(passphrase ? { open: { passphrase } } : {}),
        ...(options.push?.lockWaitMs === undefined ? {} : { lockWaitMs: options.push.lockWaitMs }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    }
    await session.begin();
    return session;
  };

  const pushOne = async (
    name: string,
    file: string,
    requested: boolean,
    lane: number,
    pass: WalPushSession | Error,
  ) => {
    try {
      if (keyError) throw keyError;
      if (pass instanceof Error) throw pass; // the repository could not be opened, or locked
      let identity;
      try {
        identity = fileIdentity(file);
      } catch (e) {
        throw unreadableWal(file, readErrorCode(e));
      }
      const r = await pushWal(store!, file, {
        ...(options.push ?? {}),
        name,
        compressInBackground: true,
        encodeFile: encoderFor(lane),
        session: pass,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const ok: PushOk = {
        name,
        repository: options.repository,
        systemId: r.systemId,
        size: r.size,
        sha256: r.sha256,
        identity,
      };
      writeSpoolFile(spool, `${name}.ok`, JSON.stringify(ok));
      removeSpoolFile(spool, `${name}.error`);
      pushed++;
    } catch (e) {
      failed++;
      if (e instanceof PassphraseError) keyError = e;
      writeSpoolFile(
        spool,
        `${name}.error`,
        JSON.stringify({ exit: options.exitCodeOf(e), message: oneLine(e) }),
      );
    } finally {
      if (requested) removeSpoolFile(spool, `${name}.req`);
    }
  };

  let nextSweep = 0;
  try {
    while (!options.signal?.aborted) {
      let requests: string[];
      try {
        requests = spoolNames(spool, ".req");
        removeStaleTemps(spool);
      } catch {
        break; // the spool was removed
      }
      const work: { name: string; file: string; requested: boolean }[] = [];
      for (const name of requests) {
        if (inFlight.has(name)) continue;
        const req = readSpoolJson<PushRequest>(spool, `${name}.req`);
        if (!req || typeof req.file !== "string" || path.basename(req.file) !== name) {
          if (req) removeSpoolFile(spool, `${name}.req`);
          continue;
        }
        if (req.repository !== options.repository) continue; // another pusher's
        lastRequest = Date.now();
        if (okFor(name, req.file)) {
          // Pushed while the request was written: a foreground removes an .ok it
          // does not trust before asking, so this one is newer than the request.
          removeSpoolFile(spool, `${name}.req`);
          continue;
        }
        work.push({ name, file: req.file, requested: true });
      }
      let ready: string[] = [];
      try {
        ready = fs.readdirSync(statusDir).filter((f) => f.endsWith(".ready"))
          .map((f) => f.slice(0, -".ready".length)).sort();
      } catch {
        // not a data directory's pg_wal: requests only
      }
      if (Date.now() > nextSweep) {
        sweep(spool, new Set([...ready, ...requests, ...inFlight]));
        nextSweep = Date.now() + 5_000;
      }
      // Ahead of PostgreSQL only while it asks: with archive_command changed or
      // emptied, no request comes, and the ready files are left alone.
      const ahead = Date.now() - lastRequest < AHEAD_WHILE_ASKED_MS ? ready : [];
      for (const name of ahead) {
        if (work.length >= queue) break;
        if (inFlight.has(name) || work.some((w) => w.name === name)) continue;
        const file = path.join(options.walDir, name);
        if (fs.existsSync(path.join(spool, `${name}.error`)) || okFor(name, file)) continue;
        work.push({ name, file, requested: false });
      }
      if (work.length === 0) {
        if (Date.now() - lastWork > idleMs) break;
        await sleep(10);
        continue;
      }
      const pass = await beginPass().catch((e) => e instanceof Error ? e : new Error(String(e)));
      let next = 0;
      const lane = async (index: number) => {
        while (next < work.length) {
          const w = work[next++]!;
          inFlight.add(w.name);
          try {
            await pushOne(w.name, w.file, w.requested, index, pass);
          } finally {
            inFlight.delete(w.name);
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: Math.min(lanes, work.length) }, (_, i) => lane(i)));
      } finally {
        if (!(pass instanceof Error)) await pass.end();
      }
      lastWork = Date.now();
      // The repository cannot be opened, or not unlocked: reported, stop.
      if (store === null || keyError) break;
    }
  } finally {
    clearInterval(heartbeat);
    const started = pool as Promise<EnginePool> | null;
    if (started) await (await started.catch(() => null))?.close();
    await (store as BlobStore | null)?.close?.();
    lock.release();
  }
  return { ran: true, pushed, failed, threads: threads.size };
}

/**
 * Removes the statuses of files PostgreSQL no longer asks about (no request,
 * no `.ready`: archived and marked done), a minute after they were written.
 */
function sweep(spool: string, live: Set<string>): void {
  const now = Date.now();
  for (const suffix of [".ok", ".error"]) {
    for (const name of spoolNames(spool, suffix)) {
      if (live.has(name)) continue;
      try {
        if (now - fs.statSync(path.join(spool, name + suffix)).mtimeMs > 60_000) {
          removeSpoolFile(spool, name + suffix);
        }
      } catch {
        // removed meanwhile
      }
    }
  }
}
