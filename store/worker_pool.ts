/**
 * One worker pool for the engine: typed jobs (a job kind names a handler in
 * a registry), transfer lists, a per-lane in-flight limit, lanes where a
 * caller needs order, results streamed in parts with back-pressure, and an
 * in-process fallback that runs the same handlers when worker threads
 * cannot start (or `workers: 0`).
 *
 * Every worker thread runs one entry module ({@linkcode WORKER_ENTRY},
 * store/worker_entry.ts) that serves the engine's registry with
 * {@linkcode serveJobs}. A lane is one worker thread (or, in-process, one
 * queue on this thread); the jobs sent to a lane run one after the other,
 * in the order they were sent, on one handler instance per kind and lane
 * (so a handler may keep state from one job to the next, as the restore
 * writer keeps a large file open across batches).
 *
 * @example
 * ```ts ignore
 * const pool = await WorkerPool.start(JOB_HANDLERS, { workers: 2 });
 * try {
 *   const check = await pool.run("verify.pack", { name, bytes }, { transfer: [bytes.buffer] });
 * } finally {
 *   await pool.close();
 * }
 * ```
 *
 * @module
 */
import { availableParallelism } from "node:os";

/** What a job's handler is given besides its input. */
export interface JobContext<P> {
  /**
   * Sends a part of the job's result to the caller, who gets the parts of a
   * job in order; `bytes` (default 0) counts toward the lane's unacknowledged
   * bytes, and the promise waits while too many are in flight.
   */
  part(value: P, transfer?: Transferable[], bytes?: number): Promise<void>;
}

/** The handler of one kind of job on one lane. */
export interface JobHandler<I, O, P> {
  /** Runs one job; may throw (the caller's promise rejects with the error). */
  run(input: I, context: JobContext<P>): O | Promise<O>;
  /** Called when the pool closes (for example to remove temporary files). */
  close?(): void;
}

/** A kind of job: makes its handler once per lane, on first use. */
export interface JobKind<I, O, P = never> {
  /** Makes the handler of one lane. */
  create(): JobHandler<I, O, P>;
}

/** A registry of job kinds by name. */
// deno-lint-ignore no-explicit-any
export type JobHandlers = Record<string, JobKind<any, any, any>>;

/** The input of a kind of job. */
export type JobInput<K> = K extends JobKind<infer I, infer _O, infer _P> ? I : never;
/** The output of a kind of job. */
export type JobOutput<K> = K extends JobKind<infer _I, infer O, infer _P> ? O : never;
/** The part type of a kind of job. */
export type JobPart<K> = K extends JobKind<infer _I, infer _O, infer P> ? P : never;

/** The engine's one worker entry module. */
export const WORKER_ENTRY: URL = new URL("./worker_entry.ts", import.meta.url);

/** Options of {@linkcode WorkerPool.start}. */
export interface WorkerPoolOptions {
  /** Worker threads; 0 runs jobs in-process. Default: the number of cores. */
  readonly workers?: number;
  /** Jobs sent to one lane and not yet finished, at most. Default 2. */
  readonly inFlight?: number;
  /** The worker entry module. Default {@linkcode WORKER_ENTRY}. */
  readonly entry?: URL;
  /** What the threads do, for warnings ("reader", "writer"...). Default "worker". */
  readonly name?: string;
  /** What the threads fall back to, for the warning. Default "running jobs on the main thread". */
  readonly fallback?: string;
  /** Gets a warning when some threads cannot start. */
  readonly onWarning?: (message: string) => void;
  /** How long a thread may take to load. Default 30 s. */
  readonly startTimeoutMs?: number;
}

/** Options of one job. */
export interface JobOptions<P> {
  /** Buffers moved to the worker with the input (they are unusable here afterwards). */
  readonly transfer?: Transferable[];
  /**
   * The lane to run on (modulo the number of lanes); default the first lane
   * with room. Lanes fill in order, so a few large jobs share one thread
   * rather than each holding its own window of unacknowledged parts on a
   * thread of its own (the consumer of the parts, not the threads, sets the
   * pace of a backup of a few large files).
   */
  readonly lane?: number;
  /**
   * Gets the job's parts in order. Calls never overlap, across all jobs of
   * the pool; the next part waits for the promise. A throw fails the job.
   */
  readonly onPart?: (part: P) => void | Promise<void>;
}

/** A job that has been sent to a lane. */
export interface SentJob<O> {
  /** The lane it runs on. */
  readonly lane: number;
  /** Its output, or its error. */
  readonly result: Promise<O>;
}

// ------------------------------------------------------------ the protocol

type ToWorker =
  | { t: "job"; id: number; kind: string; input: unknown }
  | { t: "ack"; bytes: number }
  | { t: "close" };

type FromWorker =
  | { t: "ready" }
  | { t: "part"; id: number; part: unknown; bytes: number }
  | { t: "done"; id: number; output: unknown }
  | { t: "fail"; id: number; error: { name: string; message: string; stack?: string } }
  | { t: "closed" };

interface Pending {
  readonly id: number;
  readonly onPart: ((part: unknown) => void | Promise<void>) | undefined;
  readonly result: Promise<unknown>;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
  /** Set when the caller's onPart threw: the job fails with this. */
  failure: { error: unknown } | null;
}

interface Lane {
  readonly index: number;
  readonly worker: Worker | null;
  readonly pending: Map<number, Pending>;
  /** Resolvers of callers waiting for room on this lane. */
  readonly waiting: (() => void)[];
  /** In-process: handler instances by kind, and the tail of the job queue. */
  readonly local: Map<string, JobHandler<unknown, unknown, unknown>>;
  tail: Promise<void>;
  dead: Error | null;
}

const DEFAULT_MAX_UNACKED = 64 * 1024 * 1024;
const CLOSE_TIMEOUT_MS = 5_000;

function post(w: Worker, m: ToWorker, transfer: Transferable[] = []): void {
  w.postMessage(m, transfer);
}

function revive(e: { name: string; message: string; stack?: string }): Error {
  const err = new Error(e.message);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}

/** Gives a part to the job's onPart, unless an earlier part failed; a throw fails the job. */
async function deliver(p: Pending, part: unknown): Promise<void> {
  if (p.failure || !p.onPart) return;
  try {
    await p.onPart(part);
  } catch (e) {
    p.failure = { error: e };
  }
}

/** Starts one worker and waits until its entry module has loaded. */
function startWorker(url: URL, timeoutMs: number): Promise<Worker | Error> {
  let w: Worker;
  try {
    w = new Worker(url.href, { type: "module" });
  } catch (e) {
    return Promise.resolve(e instanceof Error ? e : new Error(String(e)));
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      w.terminate();
      resolve(new Error("no answer from the worker"));
    }, timeoutMs);
    w.onmessage = (ev: MessageEvent<FromWorker>) => {
      if (ev.data?.t !== "ready") return;
      clearTimeout(timer);
      resolve(w);
    };
    w.onerror = (ev) => {
      ev.preventDefault();
      clearTimeout(timer);
      w.terminate();
      resolve(new Error(ev.message || "the worker failed to load"));
    };
  });
}

/** A pool of lanes running the jobs of a registry. */
export class WorkerPool<H extends JobHandlers> {
  readonly #handlers: H;
  readonly #lanes: Lane[];
  readonly #inFlight: number;
  readonly #name: string;
  #nextId = 0;
  #closed = false;
  /** The first job failure. */
  #error: { error: unknown } | null = null;
  /** Part deliveries, one after the other across the whole pool. */
  #parts: Promise<void> = Promise.resolve();

  private constructor(handlers: H, workers: Worker[], options: WorkerPoolOptions) {
    this.#handlers = handlers;
    this.#inFlight = Math.max(1, options.inFlight ?? 2);
    this.#name = options.name ?? "worker";
    const lane = (index: number, worker: Worker | null): Lane => ({
      index,
      worker,
      pending: new Map(),
      waiting: [],
      local: new Map(),
      tail: Promise.resolve(),
      dead: null,
    });
    this.#lanes = workers.length ? workers.map((w, i) => lane(i, w)) : [lane(0, null)];
    for (const l of this.#lanes) if (l.worker) this.#listen(l, l.worker);
  }

  /**
   * Starts `workers` threads (default: one per core) and waits until each
   * has loaded. A thread that cannot start is dropped with a warning; with
   * none left, jobs run in-process on one lane.
   */
  static async start<H extends JobHandlers>(
    handlers: H,
    options: WorkerPoolOptions = {},
  ): Promise<WorkerPool<H>> {
    const n = Math.max(0, Math.floor(options.workers ?? availableParallelism()));
    const entry = options.entry ?? WORKER_ENTRY;
    const timeout = options.startTimeoutMs ?? 30_000;
    const started = await Promise.all(
      Array.from({ length: n }, () => startWorker(entry, timeout)),
    );
    const ok = started.filter((w): w is Worker => w instanceof Worker);
    const failed = started.find((w): w is Error => w instanceof Error);
    if (failed) {
      const name = options.name ?? "worker";
      options.onWarning?.(
        `${n - ok.length} of ${n} ${name} threads could not start (${failed.message}); ` +
          (ok.length
            ? "continuing with fewer"
            : options.fallback ?? "running jobs on the main thread"),
      );
    }
    return new WorkerPool(handlers, ok, options);
  }

  /** Number of lanes (worker threads, or 1 in-process). */
  get lanes(): number {
    return this.#lanes.length;
  }

  /** Whether jobs run on worker threads (false: in-process). */
  get threaded(): boolean {
    return this.#lanes[0]!.worker !== null;
  }

  #listen(lane: Lane, w: Worker): void {
    const ack = (bytes: number) => {
      if (bytes > 0 && !lane.dead) post(w, { t: "ack", bytes });
    };
    w.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      if (m.t === "part") {
        const p = lane.pending.get(m.id);
        this.#parts = this.#parts.then(async () => {
          if (p) await deliver(p, m.part);
          ack(m.bytes);
        });
      } else if (m.t === "done" || m.t === "fail") {
        // After the job's parts have been handled.
        this.#parts = this.#parts.then(() => {
          const p = lane.pending.get(m.id);
          if (!p) return;
          if (m.t === "fail") this.#settle(lane, p, false, revive(m.error));
          else this.#settle(lane, p, true, m.output);
        });
      }
    };
    w.onerror = (ev) => {
      ev.preventDefault();
      this.#kill(lane, new Error(`${this.#name} thread failed: ${ev.message}`));
    };
  }

  /** Marks a lane as unusable: its jobs and its waiting callers fail with `e`. */
  #kill(lane: Lane, e: Error): void {
    lane.dead ??= e;
    for (const p of [...lane.pending.values()]) this.#settle(lane, p, false, lane.dead);
    for (const wake of lane.waiting.splice(0)) wake();
    lane.worker?.terminate();
  }

  /** Ends a job: its lane has room again. A failure of the caller's onPart wins. */
  #settle(lane: Lane, p: Pending, ok: boolean, value: unknown): void {
    if (!lane.pending.delete(p.id)) return;
    for (const wake of lane.waiting.splice(0)) wake();
    if (p.failure) {
      ok = false;
      value = p.failure.error;
    }
    if (ok) {
      p.resolve(value);
    } else {
      this.#error ??= { error: value };
      p.reject(value);
    }
  }

  /** A lane with room (the given one, or the first with room), once there is room. */
  async #room(lane: number | undefined): Promise<Lane> {
    for (;;) {
      if (this.#closed) throw new Error(`the ${this.#name} pool is closed`);
      let l: Lane;
      if (lane !== undefined) {
        l = this.#lanes[((lane % this.#lanes.length) + this.#lanes.length) % this.#lanes.length]!;
      } else {
        // The first lane with room, not the least busy: two large files then go to one thread
        // one after the other (as the reader pool before issue 14 fed its threads); side by
        // side, each thread held its own window of parts and the backup's peak RSS grew by
        // about 100 MB for no speed (the main thread's pack writer sets the pace).
        const alive = this.#lanes.filter((x) => !x.dead);
        l = alive.find((x) => x.pending.size < this.#inFlight) ?? alive[0] ?? this.#lanes[0]!;
      }
      if (l.dead) throw l.dead;
      if (l.pending.size < this.#inFlight) return l;
      if (lane !== undefined) {
        await new Promise<void>((r) => l.waiting.push(r));
      } else {
        // Any lane's room will do.
        await new Promise<void>((r) => {
          let woken = false;
          const once = () => {
            if (woken) return;
            woken = true;
            r();
          };
          for (const x of this.#lanes) if (!x.dead) x.waiting.push(once);
        });
      }
    }
  }

  /**
   * Sends a job once its lane has room (at most `inFlight` unfinished jobs
   * per lane) and resolves when it is sent; `result` then settles with the
   * output. A rejected `result` that nobody awaits is not an unhandled
   * rejection: {@linkcode drain} reports it too.
   */
  async submit<K extends keyof H & string>(
    kind: K,
    input: JobInput<H[K]>,
    options: JobOptions<JobPart<H[K]>> = {},
  ): Promise<SentJob<JobOutput<H[K]>>> {
    if (!(kind in this.#handlers)) throw new TypeError(`unknown job kind "${kind}"`);
    const lane = await this.#room(options.lane);
    const id = this.#nextId++;
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    result.catch(() => {});
    const p: Pending = {
      id,
      onPart: options.onPart as Pending["onPart"],
      result,
      resolve,
      reject,
      failure: null,
    };
    lane.pending.set(id, p);
    if (lane.worker) {
      try {
        post(lane.worker, { t: "job", id, kind, input }, options.transfer ?? []);
      } catch (e) {
        this.#settle(lane, p, false, e);
      }
    } else {
      lane.tail = lane.tail.then(() => this.#runLocal(lane, kind, input, p));
    }
    return { lane: lane.index, result: result as Promise<JobOutput<H[K]>> };
  }

  /** Runs a job and resolves to its output (see {@linkcode submit}). */
  async run<K extends keyof H & string>(
    kind: K,
    input: JobInput<H[K]>,
    options: JobOptions<JobPart<H[K]>> = {},
  ): Promise<JobOutput<H[K]>> {
    return await (await this.submit(kind, input, options)).result;
  }

  #localHandler(lane: Lane, kind: string): JobHandler<unknown, unknown, unknown> {
    let h = lane.local.get(kind);
    if (!h) {
      h = this.#handlers[kind]!.create() as JobHandler<unknown, unknown, unknown>;
      lane.local.set(kind, h);
    }
    return h;
  }

  async #runLocal(lane: Lane, kind: string, input: unknown, p: Pending): Promise<void> {
    const context: JobContext<unknown> = {
      part: async (value) => {
        // The same one-at-a-time delivery as parts from a worker.
        const turn = this.#parts.then(() => deliver(p, value));
        this.#parts = turn;
        await turn;
      },
    };
    try {
      const out = await this.#localHandler(lane, kind).run(input, context);
      await this.#parts;
      this.#settle(lane, p, true, out);
    } catch (e) {
      this.#settle(lane, p, false, e);
    }
  }

  /**
   * Waits until every job sent so far has finished; throws the first error
   * of one, if any failed.
   */
  async drain(): Promise<void> {
    const all = this.#lanes.flatMap((l) => [...l.pending.values()].map((p) => p.result));
    await Promise.allSettled(all);
    await Promise.all(this.#lanes.map((l) => l.tail));
    if (this.#error) throw this.#error.error;
  }

  /**
   * Stops the pool: each lane's handlers are closed after the jobs already
   * sent to it (a thread that does not answer in 5 s is stopped anyway),
   * then the threads end. With `abandon`, threads stop at once, without
   * finishing their jobs or closing their handlers (for jobs that leave
   * nothing behind, such as reading). Jobs still unfinished then fail.
   */
  async close(options: { abandon?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (options.abandon) {
      for (const l of this.#lanes) {
        if (l.worker) this.#kill(l, new Error(`the ${this.#name} pool is closed`));
      }
    }
    await Promise.all(this.#lanes.map(async (l) => {
      if (!l.worker) {
        await l.tail.catch(() => {});
        for (const h of l.local.values()) {
          try {
            h.close?.();
          } catch {
            // closing is best effort
          }
        }
        return;
      }
      if (l.dead) return;
      const w = l.worker;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
        const prev = w.onmessage;
        w.onmessage = (ev: MessageEvent<FromWorker>) => {
          if (ev.data?.t === "closed") {
            clearTimeout(timer);
            resolve();
          } else {
            prev?.call(w, ev);
          }
        };
        const prevErr = w.onerror;
        w.onerror = (ev) => {
          prevErr?.call(w, ev);
          clearTimeout(timer);
          resolve();
        };
        try {
          post(w, { t: "close" });
        } catch {
          clearTimeout(timer);
          resolve();
        }
      });
    }));
    await this.#parts.catch(() => {});
    for (const l of this.#lanes) this.#kill(l, new Error(`the ${this.#name} pool is closed`));
  }

  /** Closes the pool (`await using pool = await WorkerPool.start(...)`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

// ------------------------------------------------------------ the worker side

interface WorkerScope {
  postMessage(m: unknown, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
}

/**
 * Serves the jobs of `handlers` in a worker thread: called once by the
 * worker entry module. Jobs run one after the other, in arrival order.
 */
export function serveJobs(
  handlers: JobHandlers,
  options: {
    /** Part bytes this thread may have unacknowledged before it waits. Default 64 MiB. */
    maxUnacked?: number;
  } = {},
): void {
  const scope = globalThis as unknown as WorkerScope;
  const maxUnacked = options.maxUnacked ?? DEFAULT_MAX_UNACKED;
  const instances = new Map<string, JobHandler<unknown, unknown, unknown>>();
  const queue: ToWorker[] = [];
  let unacked = 0;
  let wake: (() => void) | null = null;
  let running = false;

  const handlerOf = (kind: string) => {
    let h = instances.get(kind);
    if (!h) {
      const k = handlers[kind];
      if (!k) throw new TypeError(`unknown job kind "${kind}"`);
      h = k.create() as JobHandler<unknown, unknown, unknown>;
      instances.set(kind, h);
    }
    return h;
  };

  const runJob = async (m: { id: number; kind: string; input: unknown }) => {
    const context: JobContext<unknown> = {
      part: async (value, transfer = [], bytes = 0) => {
        unacked += bytes;
        scope.postMessage(
          { t: "part", id: m.id, part: value, bytes } satisfies FromWorker,
          transfer,
        );
        while (unacked > maxUnacked) await new Promise<void>((r) => (wake = r));
      },
    };
    try {
      const output = await handlerOf(m.kind).run(m.input, context);
      scope.postMessage({ t: "done", id: m.id, output } satisfies FromWorker);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      scope.postMessage(
        {
          t: "fail",
          id: m.id,
          error: {
            name: err.name,
            message: err.message,
            ...(err.stack ? { stack: err.stack } : {}),
          },
        } satisfies FromWorker,
      );
    }
  };

  const pump = async () => {
    if (running) return;
    running = true;
    while (queue.length > 0) {
      const m = queue.shift()!;
      if (m.t === "job") {
        await runJob(m);
      } else if (m.t === "close") {
        for (const h of instances.values()) {
          try {
            h.close?.();
          } catch {
            // closing is best effort
          }
        }
        scope.postMessage({ t: "closed" } satisfies FromWorker);
      }
    }
    running = false;
  };

  scope.onmessage = (ev: MessageEvent<ToWorker>) => {
    const m = ev.data;
    if (m.t === "ack") {
      unacked -= m.bytes;
      if (unacked <= maxUnacked) {
        const w = wake;
        wake = null;
        w?.();
      }
      return;
    }
    queue.push(m);
    void pump();
  };
  scope.postMessage({ t: "ready" } satisfies FromWorker);
}
