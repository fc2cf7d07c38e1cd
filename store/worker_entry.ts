/**
 * The one worker entry module of the engine: every thread of the worker
 * pool (store/worker_pool.ts) runs it, serving all the engine's job kinds
 * (store/worker_jobs.ts). scripts/compile.ts names it to embed it in the
 * single executable.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { ENGINE_JOBS } from "./worker_jobs.ts";
import { serveJobs } from "./worker_pool.ts";

serveJobs(ENGINE_JOBS);
