/**
 * Reads the parts of a databend-meta configuration file (TOML) that a
 * restore needs: the node's raft directory and id (`[raft_config] raft_dir`
 * and `id`).
 *
 * @module
 */
import * as path from "node:path";
import { InvalidInput } from "../../store/errors.ts";
import { isTable, parseToml, readConfigText, reqString } from "./_toml.ts";

/** What a restore takes from databend-meta.toml. */
export interface MetaNodeConfig {
  /** Absolute path of the raft directory (a relative one is resolved against the config's directory). */
  readonly raftDir: string;
  /** The node id (`[raft_config] id`, 0 when unset as in databend-meta). */
  readonly id: number;
}

/**
 * Parses the text of a databend-meta config; `configPath` names the file in
 * messages and anchors a relative `raft_dir`.
 *
 * @throws {InvalidInput} when the TOML is malformed or `[raft_config]`
 * lacks `raft_dir` or has a bad `id`.
 */
export function parseMetaConfig(text: string, configPath: string): MetaNodeConfig {
  // Integers as bigint, so that a float such as 1.0 is told apart and refused as an id.
  const doc = parseToml(text, configPath, { integersAsBigInt: true });
  const raft = doc["raft_config"];
  if (!isTable(raft)) {
    throw new InvalidInput(
      `${configPath} has no [raft_config] section: give the databend-meta config to --meta-config`,
    );
  }
  const dir = reqString(raft, "raft_dir", "raft_config", configPath);
  const id = raft["id"] ?? 0n;
  if (typeof id !== "bigint" || id < 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidInput(
      `raft_config.id in ${configPath} must be a non-negative integer: fix its value`,
    );
  }
  return { raftDir: path.resolve(path.dirname(path.resolve(configPath)), dir), id: Number(id) };
}

/** Reads and parses a databend-meta config file. */
export async function loadMetaConfig(configPath: string): Promise<MetaNodeConfig> {
  const text = await readConfigText(
    configPath,
    "meta config file",
    "pass the databend-meta config to --meta-config",
  );
  return parseMetaConfig(text, configPath);
}
