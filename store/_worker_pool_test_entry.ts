/**
 * Worker entry of the tests of store/worker_pool.ts.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { TEST_JOBS } from "./_worker_pool_test_jobs.ts";
import { serveJobs } from "./worker_pool.ts";

serveJobs(TEST_JOBS, { maxUnacked: 1024 * 1024 });
