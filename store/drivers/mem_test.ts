import { runConformanceSuite } from "./conformance.ts";
import { MemStore } from "./mem.ts";

runConformanceSuite(
  "MemStore",
  () => Promise.resolve({ store: new MemStore(), cleanup: () => Promise.resolve() }),
);
