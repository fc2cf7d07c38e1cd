import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FsStore } from "./drivers/fs.ts";
import type { BlobStore, Handle, SaveOptions } from "./drivers/types.ts";
import { AccessDenied, ReadOnlyError } from "./errors.ts";
import { withLock } from "./lock.ts";

/** An FsStore whose lock writes fail as the fs driver reports EROFS or EACCES. */
function refusingLocks(inner: FsStore, error: Error): BlobStore {
  return {
    capabilities: inner.capabilities,
    location: inner.location,
    save: (h: Handle, data: Uint8Array, options?: SaveOptions) =>
      h.kind === "lock" ? Promise.reject(error) : inner.save(h, data, options),
    load: (h, range) => inner.load(h, range),
    stat: (h) => inner.stat(h),
    list: (kind) => inner.list(kind),
    remove: (h) => inner.remove(h),
  };
}

Deno.test("withLock on a repository on read-only media points to staged:", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-lock-"));
  try {
    const inner = await FsStore.open(dir);
    for (
      const [error, Class, why] of [
        [
          new ReadOnlyError("the file system is read-only (EROFS)"),
          ReadOnlyError,
          "is on read-only media",
        ],
        [new AccessDenied("permission was denied"), AccessDenied, "cannot be written by this user"],
      ] as const
    ) {
      let ran = false;
      const e = await withLock(refusingLocks(inner, error), "shared", "restore", undefined, () => {
        ran = true;
        return Promise.resolve();
      }).then(() => null, (err) => err);
      assert.ok(e instanceof Class, String(e));
      assert.equal(
        e.message,
        `repository "${dir}" ${why}, so restore cannot write its lock file: make it writable, or to restore, verify or copy from it read-only, give it as staged:${dir}`,
      );
      assert.equal(ran, false);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
