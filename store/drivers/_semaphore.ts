/**
 * A counting semaphore: bounds how many operations run at once.
 *
 * @module
 */

/** Lets at most `limit` callers of {@linkcode Semaphore.run} proceed at a time, first come first served. */
export class Semaphore {
  readonly #limit: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  /** A semaphore with `limit` slots (a positive integer). */
  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`concurrency limit ${limit} is invalid: use a positive integer`);
    }
    this.#limit = limit;
  }

  /** How many operations hold a slot now. */
  get active(): number {
    return this.#active;
  }

  /** Runs `fn` once a slot is free, and frees the slot when it settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.#active--;
    }
  }
}
