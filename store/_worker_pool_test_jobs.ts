/**
 * Job kinds for the tests of store/worker_pool.ts (served in threads by
 * store/_worker_pool_test_entry.ts, and in-process by the pool).
 *
 * @module
 */
import fs from "node:fs";
import type { JobKind } from "./worker_pool.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Jobs of the pool tests. */
export const TEST_JOBS = {
  /** Returns its input, and the length of a transferred buffer. */
  echo: {
    create: () => ({
      run: (x: { value: unknown; buffer?: ArrayBuffer }) => ({
        value: x.value,
        length: x.buffer?.byteLength ?? -1,
      }),
    }),
  } satisfies JobKind<{ value: unknown; buffer?: ArrayBuffer }, { value: unknown; length: number }>,
  /** Waits `ms`, returning how many jobs of this lane were running at once at most. */
  sleep: {
    create: () => {
      let running = 0;
      let most = 0;
      return {
        run: async (ms: number) => {
          running++;
          most = Math.max(most, running);
          await sleep(ms);
          running--;
          return most;
        },
      };
    },
  } satisfies JobKind<number, number>,
  /** Appends its input to the lane's list and returns the list so far. */
  append: {
    create: () => {
      const list: number[] = [];
      return {
        run: (x: number) => {
          list.push(x);
          return [...list];
        },
      };
    },
  } satisfies JobKind<number, number[]>,
  /** Sends `count` parts of `size` bytes each (transferred), then returns `count`. */
  parts: {
    create: () => ({
      run: async (x: { count: number; size: number }, ctx) => {
        for (let i = 0; i < x.count; i++) {
          const b = new Uint8Array(x.size).fill(i & 0xff);
          await ctx.part({ i, bytes: b }, [b.buffer], b.length);
        }
        return x.count;
      },
    }),
  } satisfies JobKind<{ count: number; size: number }, number, { i: number; bytes: Uint8Array }>,
  /** Throws a RangeError quoting its input. */
  fail: {
    create: () => ({
      run: (x: string): never => {
        throw new RangeError(`bad input "${x}"`);
      },
    }),
  } satisfies JobKind<string, never>,
  /** Crashes the thread it runs on (an error thrown outside any job). */
  crash: {
    create: () => ({
      run: async () => {
        setTimeout(() => {
          throw new Error("the thread crashed");
        }, 0);
        await sleep(10_000);
      },
    }),
  } satisfies JobKind<null, void>,
  /** Remembers a path; closing the pool writes "closed" there. */
  marker: {
    create: () => {
      let at: string | null = null;
      return {
        run: (p: string) => {
          at = p;
        },
        close: () => {
          if (at) fs.writeFileSync(at, "closed");
        },
      };
    },
  } satisfies JobKind<string, void>,
};
