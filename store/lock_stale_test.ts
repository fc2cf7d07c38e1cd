import assert from "node:assert/strict";
import {
  FUTURE_STALE_MS,
  type LockInfo,
  RepositoryLock,
  STALE_AFTER_MS,
  staleReason,
} from "./lock.ts";
import { MemStore } from "./drivers/mem.ts";

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);

function lockAt(refreshedMs: number): LockInfo {
  const t = new Date(refreshedMs).toISOString();
  return { kind: "shared", operation: "backup", host: "elsewhere", pid: 1, time: t, refreshed: t };
}

Deno.test("staleReason judges a lock refreshed far in the future stale, and names the clock", () => {
  const far = staleReason(lockAt(NOW + FUTURE_STALE_MS + 60_000), NOW, "here");
  assert.ok(far !== null, "a refresh time a day ahead never goes stale otherwise");
  assert.match(far, /in the future, so the clock of elsewhere was wrong/);
  // A clock a few minutes or hours ahead is trusted, and a recent lock is live.
  assert.equal(staleReason(lockAt(NOW + 10 * 60_000), NOW, "here"), null);
  assert.equal(staleReason(lockAt(NOW + 5 * 3_600_000), NOW, "here"), null);
  assert.equal(staleReason(lockAt(NOW - 60_000), NOW, "here"), null);
  assert.ok(staleReason(lockAt(NOW - STALE_AFTER_MS - 60_000), NOW, "here") !== null);
});

Deno.test("RepositoryLock.acquire removes and reports a lock refreshed years in the future", async () => {
  const store = new MemStore();
  const future = lockAt(Date.UTC(2099, 0, 1));
  await store.save(
    { kind: "lock", name: "future.lock" },
    new TextEncoder().encode(JSON.stringify({ ...future, kind: "exclusive" })),
  );
  const stale: string[] = [];
  const lock = await RepositoryLock.acquire(store, "shared", {
    operation: "backup",
    onStale: (s) => stale.push(`${s.name}: ${s.reason}`),
  });
  await lock.release();
  assert.equal(stale.length, 1);
  assert.match(
    stale[0]!,
    /^future\.lock: its refresh time 2099-01-01T00:00:00\.000Z is more than 24 hours/,
  );
});
