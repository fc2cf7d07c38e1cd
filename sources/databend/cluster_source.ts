/**
 * A Databend cluster as a backup source: the meta service's export (part
 * `meta`, a stream stored as `meta-export.jsonl`), then every object of the
 * cluster's storage (part `storage`). The manifest also gets the cluster's
 * catalog, derived from the export as it streams.
 *
 * Consistency: the metadata is taken first, then the data. Databend never
 * rewrites a data object in place, so every object the exported metadata
 * refers to is in storage when the export is taken; the backup only misses
 * it if something deletes it before the storage walk reaches it: the
 * cluster's vacuum (`VACUUM TABLE`, `VACUUM DROP TABLE`, data retention
 * purges) or a `DROP ... ` whose retention ends during the backup. Pause
 * vacuum jobs while a backup runs. Objects written after the export are
 * backed up too; the restored metadata does not refer to them, and a later
 * vacuum of the restored cluster removes them.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { type FileHandle, open } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import type { ObjectsPart, Source, SourcePart, StreamPart } from "../types.ts";
import { CommandFailed, InvalidInput } from "../../store/errors.ts";
import type { BlobStore } from "../../store/drivers/types.ts";
import { type ChunkerParams, DEFAULT_FASTCDC } from "../../formats/chunker.ts";
import type { Catalog, CatalogSnapshot } from "../../formats/manifest.ts";
import {
  describeQueryConfig,
  loadQueryConfig,
  type QueryConfig,
  storageLocation,
} from "./query_config.ts";
import { CatalogBuilder } from "./catalog.ts";
import { openClusterStorage } from "./cluster_storage.ts";
import { type CapturedObjects, scanTableSnapshots } from "./snapshot_scan.ts";
import fs from "node:fs";
import fsp from "node:fs/promises";
import { exportMetaGrpc } from "./meta_grpc.ts";

/** File name of the meta export inside the `meta` part. */
export const META_EXPORT_FILE = "meta-export.jsonl";

/** Options of {@linkcode clusterSource}. */
export interface ClusterSourceOptions {
  /** Read the meta export from this file instead of the meta service. */
  readonly metaExportFile?: string;
  /** Run this shell command and read the meta export from its standard output. */
  readonly metaExportCommand?: string;
  /** Milliseconds to wait for a meta service endpoint (gRPC export; default 10 000). */
  readonly metaTimeoutMs?: number;
  /** Lines per gRPC message asked of the meta service (gRPC export; the server's default is 32). */
  readonly metaChunkSize?: number;
  /** Chunker of the storage part (default FastCDC, as for directories). */
  readonly chunker?: ChunkerParams;
  /** Receives warnings (S3 retries). */
  readonly onWarning?: (message: string) => void;
  /**
   * A partial backup: only these databases (`db`) and tables (`db.table`)
   * have their objects backed up; the meta export is always whole.
   */
  readonly select?: readonly string[];
}

/** The storage prefixes (ending in `/`) of the selected databases and tables. */
function selectedPrefixes(catalog: Catalog, select: readonly string[]): string[] {
  const out = new Set<string>();
  for (const item of select) {
    const dot = item.indexOf(".");
    const dbName = dot < 0 ? item : item.slice(0, dot);
    const db = catalog.databases.find((d) => d.name === dbName);
    if (db === undefined) {
      throw new InvalidInput(
        `database ${dbName} (of ${
          dot < 0 ? "--database" : "--table"
        } ${item}) is not in the cluster's catalog: check the name`,
      );
    }
    if (dot < 0) {
      for (const t of db.tables) out.add(t.storagePrefix);
      continue;
    }
    const t = db.tables.find((x) => x.name === item.slice(dot + 1));
    if (t === undefined) {
      throw new InvalidInput(
        `table ${item} (--table) is not in the cluster's catalog: check the name`,
      );
    }
    out.add(t.storagePrefix);
  }
  return [...out].sort();
}

/** Whether the object or directory `rel` (no trailing `/`) is within or above a selected prefix. */
function withinSelection(prefixes: readonly string[], rel: string, dirsAbove: boolean): boolean {
  const r = `${rel}/`;
  return prefixes.some((p) =>
    r.startsWith(p) || rel.startsWith(p) || (dirsAbove && p.startsWith(r))
  );
}

/** Where the meta export comes from, for messages and the manifest's settings. */
function metaOrigin(c: QueryConfig, o: ClusterSourceOptions): { kind: string; shown: string } {
  if (o.metaExportFile !== undefined) {
    return { kind: "file", shown: `meta export file ${o.metaExportFile}` };
  }
  if (o.metaExportCommand !== undefined) {
    return { kind: "command", shown: "the output of --meta-export-command" };
  }
  return { kind: "grpc", shown: `the meta service at ${c.meta.endpoints.join(", ")}` };
}

/**
 * The source for the cluster of the databend-query config at `configPath`.
 *
 * @throws {InvalidInput} when the config cannot be read or parsed, its
 * storage type is not supported, or both export options are given.
 *
 * @example
 * ```ts ignore
 * import { clusterSource } from "./cluster_source.ts";
 * const src = await clusterSource("query-node.toml", { metaExportFile: "meta.jsonl" });
 * src.info.key; // "databend:<tenant>:<cluster>"
 * ```
 */
export async function clusterSource(
  configPath: string,
  options: ClusterSourceOptions = {},
): Promise<Source> {
  if (options.metaExportFile !== undefined && options.metaExportCommand !== undefined) {
    throw new InvalidInput(
      "--meta-export-file and --meta-export-command both say where the meta export comes from: give one",
    );
  }
  const config = await loadQueryConfig(configPath);
  const described = describeQueryConfig(config);
  const origin = metaOrigin(config, options);
  const select = options.select ?? [];
  const info = {
    ...described,
    ...(select.length > 0
      ? { description: `${described.description} (partial: ${select.join(", ")})` }
      : {}),
    settings: {
      ...described.settings,
      meta_source: origin.kind,
      host: hostname(),
      ...(select.length > 0 ? { partial: select.join(",") } : {}),
    },
  };
  let builder: CatalogBuilder | null = null;
  let complete = false;
  let exportDoneMs = 0;
  let storage: BlobStore | null = null;
  /** Objects the storage part listed (object stores), by name. */
  const listed = new Map<string, number>();
  /** The selected storage prefixes, resolved from the catalog once the export is in. */
  let prefixes: string[] | null = null;
  const selection = (): string[] | null => {
    if (select.length === 0) return null;
    if (prefixes === null) {
      if (!complete || builder === null) {
        throw new InvalidInput("the meta export must be read before the storage is selected");
      }
      prefixes = selectedPrefixes(builder.build(), select);
    }
    return prefixes;
  };

  const meta: StreamPart = {
    name: "meta",
    kind: "stream",
    fileName: META_EXPORT_FILE,
    open: () => {
      builder = new CatalogBuilder(config.tenantId, config.clusterId);
      const b = builder;
      return Promise.resolve(
        checkedExport(openExport(config, options), b, origin.shown, () => {
          complete = true;
          exportDoneMs = Date.now();
        }),
      );
    },
  };

  const parts = async (): Promise<SourcePart[]> => {
    if (config.storage.type === "fs") {
      // Fail before the export is taken when the data path is wrong.
      await openClusterStorage(config.storage);
      return [meta, {
        name: "storage",
        kind: "tree",
        path: config.storage.dataPath,
        chunker: options.chunker ?? DEFAULT_FASTCDC,
        ...(select.length > 0
          ? { exclude: (rel: string) => !withinSelection(selection()!, rel, true) }
          : {}),
      }];
    }
    storage = await openClusterStorage(config.storage, {
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    });
    const store = storage;
    const objects: ObjectsPart = {
      name: "storage",
      kind: "objects",
      chunker: options.chunker ?? DEFAULT_FASTCDC,
      location: storageLocation(config.storage),
      async *list() {
        listed.clear();
        const chosen = selection();
        for await (const f of store.list("raw")) {
          if (chosen !== null && !withinSelection(chosen, f.name, false)) continue;
          listed.set(f.name, f.size);
          yield {
            name: f.name,
            size: f.size,
            mtimeMs: f.mtimeMs ?? 0,
            ...(f.etag !== undefined ? { etag: f.etag } : {}),
          };
        }
      },
      read: (name, range) => store.load({ kind: "raw", name }, range),
      stat: async (name) => {
        const f = await store.stat({ kind: "raw", name });
        return {
          name,
          size: f.size,
          mtimeMs: f.mtimeMs ?? 0,
          ...(f.etag !== undefined ? { etag: f.etag } : {}),
        };
      },
    };
    return [meta, objects];
  };

  return {
    info,
    parts,
    catalog: (): Catalog | null => (complete && builder ? builder.build() : null),
    conclude: async (context) => {
      if (!complete || builder === null) return { catalog: null, warnings: [], incomplete: false };
      const catalog = builder.build();
      const chosen = selection();
      const captured: CapturedObjects = config.storage.type === "fs"
        ? capturedFs(config.storage.dataPath, exportDoneMs, chosen)
        : capturedListing(listed, storage!);
      // Snapshot objects are never rewritten: the parent backup's reading of one still holds.
      const known = new Map<string, CatalogSnapshot>();
      for (const d of context?.parent?.catalog?.databases ?? []) {
        for (const t of d.tables) for (const x of t.snapshots ?? []) known.set(x.location, x);
      }
      const scan = await scanTableSnapshots(catalog, captured, {
        ...(chosen ? { only: chosen } : {}),
        known,
      });
      const warnings = [...builder.warnings, ...scan.warnings, ...scan.missing];
      for (const w of warnings) options.onWarning?.(w);
      return { catalog: scan.catalog, warnings, incomplete: scan.missing.length > 0 };
    },
    close: async () => {
      await storage?.close?.();
      storage = null;
    },
  };
}

/** Opens the configured export as a stream of bytes. */
function openExport(
  config: QueryConfig,
  options: ClusterSourceOptions,
): AsyncIterable<Uint8Array> {
  if (options.metaExportFile !== undefined) return readFile(options.metaExportFile);
  if (options.metaExportCommand !== undefined) {
    return runCommand(options.metaExportCommand);
  }
  const tls = config.meta.tls;
  let ca: string | undefined;
  if (tls !== undefined) {
    try {
      ca = fs.readFileSync(tls.caCertPath, "utf8");
    } catch (e) {
      throw new InvalidInput(
        `the meta service CA certificate ${tls.caCertPath} (rpc_tls_meta_server_root_ca_cert) cannot be read (${
          (e as { code?: string }).code ?? e
        }): fix [meta] in the query config`,
      );
    }
  }
  return exportMetaGrpc(config.meta.endpoints, {
    ...(tls !== undefined && ca !== undefined ? { tls: { ca, servername: tls.domainName } } : {}),
    ...(options.metaTimeoutMs !== undefined ? { timeoutMs: options.metaTimeoutMs } : {}),
    ...(options.metaChunkSize !== undefined ? { chunkSize: options.metaChunkSize } : {}),
    ...(config.meta.username !== undefined ? { username: config.meta.username } : {}),
    ...(config.meta.password !== undefined ? { password: config.meta.password } : {}),
  });
}

async function* readFile(file: string): AsyncGenerator<Uint8Array> {
  let f: FileHandle;
  try {
    f = await open(file, "r");
  } catch (e) {
    const why = (e as { code?: string }).code === "ENOENT" ? "does not exist" : "cannot be read";
    throw new InvalidInput(
      `meta export file ${path.resolve(file)} ${why}: check --meta-export-file`,
      { cause: e },
    );
  }
  try {
    for (;;) {
      const buf = new Uint8Array(1 << 20);
      const { bytesRead } = await f.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await f.close();
  }
}

/** Runs `command` with `sh -c`, yielding its standard output; a failure exit is an error. */
async function* runCommand(command: string): AsyncGenerator<Uint8Array> {
  const child = spawn("sh", ["-c", command], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.on("error", (error) => resolve({ code: null, error }));
    child.on("close", (code) => resolve({ code }));
  });
  // The last few KiB of standard error explain a failure.
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text: string) => {
    stderr = (stderr + text).slice(-4096);
  });
  let finished = false;
  try {
    for await (const chunk of child.stdout) yield new Uint8Array(chunk as Buffer);
    finished = true;
  } finally {
    if (!finished) {
      child.kill("SIGTERM");
      await exited;
    }
  }
  const { code, error } = await exited;
  if (error) {
    throw new CommandFailed(`cannot start sh for --meta-export-command: ${error.message}`);
  }
  if (code !== 0) {
    const last = stderr.trim().split("\n").pop() ?? "";
    throw new CommandFailed(
      `--meta-export-command exited with status ${code}${
        last ? ` (${last})` : ""
      }: run it by hand to see why, fix it, or pass --meta-export-file`,
    );
  }
}

/**
 * Passes the export through while feeding its lines to the catalog builder:
 * a malformed or empty export fails the backup before a manifest is written.
 */
async function* checkedExport(
  chunks: AsyncIterable<Uint8Array>,
  builder: CatalogBuilder,
  shown: string,
  onComplete: () => void,
): AsyncGenerator<Uint8Array> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let rest = "";
  const feed = (text: string, last: boolean) => {
    rest += text;
    const lines = rest.split("\n");
    rest = last ? "" : lines.pop()!;
    for (const line of lines) builder.addLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  };
  try {
    for await (const chunk of chunks) {
      feed(decoder.decode(chunk, { stream: true }), false);
      yield chunk;
    }
    feed(decoder.decode(), true);
  } catch (e) {
    if (e instanceof SyntaxError || e instanceof RangeError || e instanceof TypeError) {
      throw new InvalidInput(`${shown}: ${e.message}`, { cause: e });
    }
    throw e;
  }
  if (builder.entries === 0) {
    throw new InvalidInput(
      `${shown} is empty: check that the meta service holds data and that the export ran`,
    );
  }
  onComplete();
}

/**
 * The objects of an fs storage root a backup captured: the storage part
 * walked the directory after the meta export, and table objects are never
 * rewritten, so a file there now whose mtime is not after the export's end
 * was captured (listing); one the export refers to was written before it
 * (has).
 */
function capturedFs(root: string, sinceMs: number, chosen: string[] | null): CapturedObjects {
  const full = (name: string) => path.join(root, ...name.split("/"));
  const inside = (name: string) => chosen === null || withinSelection(chosen, name, false);
  return {
    async list(dir) {
      if (!inside(dir.replace(/\/$/, ""))) return [];
      let entries;
      try {
        entries = await fsp.readdir(full(dir), { withFileTypes: true });
      } catch {
        return [];
      }
      const out: string[] = [];
      for (const e of entries) {
        if (!e.isFile()) continue;
        const st = await fsp.stat(full(dir + e.name)).catch(() => null);
        if (st !== null && st.mtimeMs <= sinceMs) out.push(dir + e.name);
      }
      return out;
    },
    has: async (name) =>
      inside(name) && ((await fsp.stat(full(name)).catch(() => null))?.isFile() ?? false),
    read: async (name) => new Uint8Array(await fsp.readFile(full(name))),
  };
}

/** The objects of an object store a backup captured: the names its storage part listed. */
function capturedListing(listed: ReadonlyMap<string, number>, store: BlobStore): CapturedObjects {
  return {
    list: (dir) =>
      Promise.resolve(
        [...listed.keys()].filter((n) => n.startsWith(dir) && !n.slice(dir.length).includes("/")),
      ),
    has: (name) => Promise.resolve(listed.has(name)),
    read: (name) => store.load({ kind: "raw", name }),
  };
}
