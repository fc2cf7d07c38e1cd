/**
 * Starts a worker thread and waits until its module has loaded (it posts
 * `{ type: "ready" }`), so a worker that cannot load is noticed at once and
 * the caller can fall back to working in-process.
 *
 * @module
 */

const START_TIMEOUT_MS = 30_000;

/** The started worker, or the reason it could not start. */
export function startWorker(url: URL): Promise<Worker | Error> {
  let w: Worker;
  try {
    w = new Worker(url.href, { type: "module" });
  } catch (e) {
    return Promise.resolve(e as Error);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      w.terminate();
      resolve(new Error("no answer from the worker"));
    }, START_TIMEOUT_MS);
    w.onmessage = (ev) => {
      if (ev.data?.type !== "ready") return;
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
