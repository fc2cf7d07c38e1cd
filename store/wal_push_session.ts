/**
 * A pass of the background WAL pusher over one repository: the shared lock
 * taken once for all the pass's pushes, the index brought up to date once
 * (not read again by each push), and one pack writer whose packs and index
 * file the pass's pushes commit together: the pushes that ask while a
 * commit is being written share the next one (a group commit), so a backlog
 * costs a few pack and index files, not one of each per WAL file.
 *
 * What a record needs is durable before the record is written, as for one
 * push: {@linkcode WalPushSession.commit} resolves only once every block
 * added before the call is in a saved pack listed by a saved index file.
 * A commit that fails fails every push waiting on it, and the session is
 * then spent ({@linkcode WalPushSession.spent}): its in-memory index may
 * list packs no index file lists, so the pusher opens a new one.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import type { EventSink } from "./backup/events.ts";
import type { CancelOptions } from "./cancel.ts";
import type { RepositoryLock } from "./lock.ts";
import { PackWriter } from "./pack_writer.ts";
import { acquireWalLock, skippedIndexWarning } from "./wal_archive.ts";
import { type OpenOptions, Repository } from "./repository.ts";

/** Options of {@linkcode WalPushSession.open}. */
export interface WalPushSessionOptions extends CancelOptions {
  /** How the repository is opened (its passphrase). */
  readonly open?: OpenOptions;
  /** How long to wait for a vacuum's exclusive lock (default 60 s). */
  readonly lockWaitMs?: number;
  readonly onEvent?: EventSink;
}

/** See the module documentation. */
export class WalPushSession {
  readonly #store: BlobStore;
  readonly #options: WalPushSessionOptions;
  #repo: Repository;
  #lock: RepositoryLock | null = null;
  #writer: PackWriter | null = null;
  /** The commit not started yet, which callers join. */
  #next: Promise<void> | null = null;
  /** The commits, one after the other. */
  #chain: Promise<void> = Promise.resolve();
  #spent = false;

  private constructor(store: BlobStore, repo: Repository, options: WalPushSessionOptions) {
    this.#store = store;
    this.#repo = repo;
    this.#options = options;
  }

  /** Opens the repository (its key too); the first {@linkcode begin} loads the index. */
  static async open(
    store: BlobStore,
    options: WalPushSessionOptions = {},
  ): Promise<WalPushSession> {
    return new WalPushSession(store, await Repository.open(store, options.open ?? {}), options);
  }

  /** The repository, its index up to date between {@linkcode begin} and {@linkcode end}. */
  get repo(): Repository {
    return this.#repo;
  }

  /** True once a commit failed: open a new session. */
  get spent(): boolean {
    return this.#spent;
  }

  /** The pass's pack writer (between begin and end). */
  get writer(): PackWriter {
    if (!this.#writer) throw new Error("WalPushSession.writer outside begin and end");
    return this.#writer;
  }

  /**
   * Takes the shared lock and brings the index up to date: the index files
   * written since the last pass are loaded, and when one it loaded is gone
   * (a vacuum rewrote the index) the repository is opened again and its
   * whole index loaded.
   */
  async begin(): Promise<void> {
    this.#lock = await acquireWalLock(this.#store, "wal-push", this.#options);
    try {
      const onDamaged = skippedIndexWarning(this.#options.onEvent);
      if (await this.#repo.refreshIndex(onDamaged) === null) {
        this.#repo = await Repository.open(this.#store, this.#options.open ?? {});
        await this.#repo.loadIndex(onDamaged);
      }
      this.#writer = new PackWriter(this.#store, this.#repo.index, {
        targetSize: this.#repo.config.packSize,
        crypto: this.#repo.crypto,
      });
    } catch (e) {
      await this.end();
      throw e;
    }
  }

  /**
   * Resolves once every block added to {@linkcode writer} before the call
   * is in a saved pack that a saved index file lists. Calls while a commit
   * is being written share the next.
   */
  commit(): Promise<void> {
    if (this.#next) return this.#next;
    const writer = this.writer;
    const run = this.#chain.then(async () => {
      this.#next = null; // started: later blocks may miss it, so later calls wait for the next
      // Blocks added before a failed commit may sit in a saved pack no index file lists: no
      // later commit may vouch for them.
      if (this.#spent) {
        throw new Error(
          "an earlier write of packs and index in this pass of the background pusher failed (see its WAL file's error): PostgreSQL retries, and the next pass opens the repository again",
        );
      }
      try {
        const name = await writer.writeIndex();
        if (name !== null) this.#repo.noteIndexFile(name);
      } catch (e) {
        this.#spent = true;
        throw e;
      }
    });
    this.#next = run;
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Releases the lock (after the pass's pushes have settled). */
  async end(): Promise<void> {
    this.#writer = null;
    const lock = this.#lock;
    this.#lock = null;
    await lock?.release().catch(() => {});
  }
}
