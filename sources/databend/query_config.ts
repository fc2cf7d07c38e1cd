/**
 * Reads a databend-query configuration file (TOML): the tenant and cluster
 * identity, where the cluster keeps its storage (fs or S3) and how to reach
 * its meta service. Secrets (S3 keys, the meta password) are kept in the
 * returned value for the caller that connects, but never appear in error
 * messages or in {@link describeQueryConfig}.
 *
 * @module
 */
import * as path from "node:path";
import { InvalidInput } from "../../store/errors.ts";
import type { SourceInfo } from "../types.ts";
import {
  optBool,
  optString,
  parseToml,
  readConfigText,
  reqString,
  section,
  type Table,
} from "./_toml.ts";

/** Storage kept on a local (or mounted) file system. */
export interface FsStorageConfig {
  readonly type: "fs";
  /** Absolute path of the storage root (`[storage.fs] data_path`). */
  readonly dataPath: string;
}

/** Storage kept in an S3 (or S3-compatible) bucket. */
export interface S3StorageConfig {
  readonly type: "s3";
  readonly bucket: string;
  /** Key prefix inside the bucket; `""` when unset. */
  readonly root: string;
  readonly endpointUrl?: string;
  readonly region?: string;
  /** Secret: never log or store it. */
  readonly accessKeyId?: string;
  /** Secret: never log or store it. */
  readonly secretAccessKey?: string;
  /** Secret: never log or store it. */
  readonly securityToken?: string;
  readonly enableVirtualHostStyle?: boolean;
}

/** Where the cluster keeps its table data. */
export type StorageConfig = FsStorageConfig | S3StorageConfig;

/** How to reach the meta service. */
export interface MetaConfig {
  /** `host:port` gRPC addresses of the meta nodes. */
  readonly endpoints: readonly string[];
  readonly username?: string;
  /** Secret: never log or store it. */
  readonly password?: string;
  /**
   * TLS to the meta service, as databend-query enables it: both
   * `rpc_tls_meta_server_root_ca_cert` (a PEM file, resolved against the
   * config's directory) and `rpc_tls_meta_service_domain_name` (default
   * `localhost`) are non-empty.
   */
  readonly tls?: { readonly caCertPath: string; readonly domainName: string };
}

/** The parts of a databend-query configuration that bendsave needs. */
export interface QueryConfig {
  readonly tenantId: string;
  readonly clusterId: string;
  readonly storage: StorageConfig;
  readonly meta: MetaConfig;
}

/** A value safe to echo in a message: a short plain word, or a placeholder. */
function safeWord(v: string): string {
  return /^[A-Za-z0-9_-]{1,24}$/.test(v) ? v : "(unrecognised value)";
}

function parseStorage(root: Table, file: string): StorageConfig {
  const storage = section(root, "storage", "storage", file);
  const type = reqString(storage, "type", "storage", file).toLowerCase();
  if (type === "fs") {
    const fs = section(storage, "fs", "storage.fs", file);
    const dataPath = reqString(fs, "data_path", "storage.fs", file);
    // A relative data_path is resolved against the config file's directory
    // (see testdata/README.md, "Relative data_path").
    return { type: "fs", dataPath: path.resolve(path.dirname(path.resolve(file)), dataPath) };
  }
  if (type === "s3") {
    const s3 = section(storage, "s3", "storage.s3", file);
    const w = "storage.s3";
    const out: {
      -readonly [K in keyof S3StorageConfig]: S3StorageConfig[K];
    } = {
      type: "s3",
      bucket: reqString(s3, "bucket", w, file),
      root: optString(s3, "root", w, file) ?? "",
    };
    const endpointUrl = optString(s3, "endpoint_url", w, file);
    if (endpointUrl !== undefined && endpointUrl !== "") out.endpointUrl = endpointUrl;
    const region = optString(s3, "region", w, file);
    if (region !== undefined && region !== "") out.region = region;
    const accessKeyId = optString(s3, "access_key_id", w, file);
    if (accessKeyId !== undefined && accessKeyId !== "") out.accessKeyId = accessKeyId;
    const secretAccessKey = optString(s3, "secret_access_key", w, file);
    if (secretAccessKey !== undefined && secretAccessKey !== "") {
      out.secretAccessKey = secretAccessKey;
    }
    const securityToken = optString(s3, "security_token", w, file);
    if (securityToken !== undefined && securityToken !== "") out.securityToken = securityToken;
    const vhost = optBool(s3, "enable_virtual_host_style", w, file);
    if (vhost !== undefined) out.enableVirtualHostStyle = vhost;
    return out;
  }
  throw new InvalidInput(
    `storage type "${safeWord(type)}" in ${file} is not supported yet: use fs or s3`,
  );
}

function parseMeta(root: Table, file: string): MetaConfig {
  const meta = section(root, "meta", "meta", file);
  let endpoints: string[];
  const raw = meta["endpoints"];
  if (raw !== undefined) {
    if (!Array.isArray(raw) || !raw.every((e) => typeof e === "string" && e !== "")) {
      throw new InvalidInput(
        `meta.endpoints in ${file} must be an array of "host:port" strings: fix its value`,
      );
    }
    endpoints = raw as string[];
  } else {
    // Older configs name a single meta node with `address`.
    const address = optString(meta, "address", "meta", file);
    endpoints = address === undefined || address === "" ? [] : [address];
  }
  if (endpoints.length === 0) {
    throw new InvalidInput(`meta.endpoints is missing or empty in ${file}: list the meta nodes`);
  }
  const out: {
    endpoints: string[];
    username?: string;
    password?: string;
    tls?: { caCertPath: string; domainName: string };
  } = { endpoints };
  const ca = optString(meta, "rpc_tls_meta_server_root_ca_cert", "meta", file);
  const domain = optString(meta, "rpc_tls_meta_service_domain_name", "meta", file) ?? "localhost";
  if (ca !== undefined && ca !== "" && domain !== "") {
    out.tls = {
      caCertPath: path.resolve(path.dirname(path.resolve(file)), ca),
      domainName: domain,
    };
  }
  const username = optString(meta, "username", "meta", file);
  if (username !== undefined && username !== "") out.username = username;
  const password = optString(meta, "password", "meta", file);
  if (password !== undefined && password !== "") out.password = password;
  return out;
}

/**
 * Parses the text of a databend-query config. `configPath` names the file in
 * messages and anchors a relative `data_path`.
 *
 * @throws {InvalidInput} when the TOML is malformed, a needed key is missing
 * or has the wrong type, or the storage type is neither fs nor s3.
 */
export function parseQueryConfig(text: string, configPath: string): QueryConfig {
  const doc = parseToml(text, configPath);
  const query = section(doc, "query", "query", configPath);
  return {
    tenantId: reqString(query, "tenant_id", "query", configPath),
    clusterId: reqString(query, "cluster_id", "query", configPath),
    storage: parseStorage(doc, configPath),
    meta: parseMeta(doc, configPath),
  };
}

/**
 * Reads and parses a databend-query config file.
 *
 * @throws {InvalidInput} as {@link parseQueryConfig}, or when the file cannot be read.
 */
export async function loadQueryConfig(configPath: string): Promise<QueryConfig> {
  const text = await readConfigText(
    configPath,
    "config file",
    "pass the databend-query config",
  );
  return parseQueryConfig(text, configPath);
}

/** Where a storage config points, without secrets: a directory or `s3://bucket/root`. */
export function storageLocation(storage: StorageConfig): string {
  if (storage.type === "fs") return storage.dataPath;
  const root = storage.root.replace(/^\/+|\/+$/g, "");
  return `s3://${storage.bucket}${root ? "/" + root : ""}`;
}

/** Removes `user:password@` from a URL, if any. */
function stripUserInfo(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, "$1");
}

/**
 * Describes a config without secrets, for the manifest's source settings:
 * tenant, cluster, storage location and meta endpoints. Never includes keys,
 * tokens, the meta user or password. The key is `databend:<tenant>:<cluster>`.
 */
export function describeQueryConfig(c: QueryConfig): SourceInfo {
  const settings: Record<string, string> = {
    tenant: c.tenantId,
    cluster: c.clusterId,
    storage_type: c.storage.type,
    meta_endpoints: c.meta.endpoints.join(","),
  };
  if (c.storage.type === "fs") {
    settings["data_path"] = c.storage.dataPath;
  } else {
    settings["bucket"] = c.storage.bucket;
    settings["root"] = c.storage.root;
    if (c.storage.endpointUrl !== undefined) {
      settings["endpoint_url"] = stripUserInfo(c.storage.endpointUrl);
    }
    if (c.storage.region !== undefined) settings["region"] = c.storage.region;
  }
  return {
    type: "databend",
    key: `databend:${c.tenantId}:${c.clusterId}`,
    description: `Databend tenant ${c.tenantId}, cluster ${c.clusterId}, storage ${
      storageLocation(c.storage)
    }`,
    settings,
  };
}
