/**
 * bendsave: disaster-recovery backups for databases and directories.
 *
 * The library behind the `bendsave` command: everything the CLI does is
 * reachable from here.
 *
 * @example
 * ```ts ignore
 * import { backup, dirSource, listBackups, openStore, restore } from "./mod.ts";
 * const store = await openStore("/backups/repo", { create: true });
 * const r = await backup(store, dirSource("/var/lib/app"));
 * console.log(r.name, (await listBackups(store)).backups.length);
 * await restore(store, "/tmp/restored", { manifest: r.name });
 * ```
 *
 * @module
 */
export * from "./store/errors.ts";
export { beforeCommit, type CancelOptions, checkpoint, throwIfCancelled } from "./store/cancel.ts";
export * from "./store/drivers/mod.ts";
export { openStore, splitManifestLocation } from "./store/open_store.ts";
export { type InitOptions, type ManifestRecord, Repository } from "./store/repository.ts";
export { type BlobLocation, BlockIndex } from "./store/block_index.ts";
export { type LockInfo, RepositoryLock } from "./store/lock.ts";
export { backup, type BackupOptions, type BackupResult } from "./store/backup/backup.ts";
export type {
  EventSink,
  OperationEvent,
  OperationName,
  ProgressEvent,
  WarningEvent,
} from "./store/backup/events.ts";
export {
  planRestore,
  planRestoreToStore,
  restore,
  type RestoreOptions,
  type RestorePlan,
  type RestoreResult,
  restoreToStore,
} from "./store/restore/restore.ts";
export {
  type BatchLimits,
  planWith,
  type RestorerOptions,
  restoreWith,
} from "./store/restore/restorer.ts";
export type { Ledger, RestoreOutput, TargetView } from "./store/restore/output.ts";
export type {
  Entry as RestoreEntry,
  ExactName,
  Link as RestoreLink,
  SelectedDir,
} from "./store/restore/collect.ts";
export { DirOutput, type DirOutputOptions } from "./store/restore/dir_output.ts";
export {
  StoreOutput,
  type StoreOutputLimits,
  type StoreOutputOptions,
} from "./store/restore/store_output.ts";
export { decodeChecked, type StoredBlock } from "./store/restore/stored_block.ts";
export { type BackupSummary, listBackups } from "./store/list.ts";
export { verify, type VerifyOptions, type VerifyReport } from "./store/verify.ts";
export { repairIndex, type RepairResult } from "./store/repair.ts";
export { vacuum, type VacuumOptions, type VacuumPlan, type VacuumResult } from "./store/vacuum.ts";
export {
  archivedSystems,
  DEFAULT_WAL_LOCK_WAIT_MS,
  fetchWal,
  type FetchWalOptions,
  type FetchWalResult,
  listWal,
  type ListWalOptions,
  pushWal,
  type PushWalOptions,
  type PushWalResult,
  type SystemIdOptions,
  walArchived,
  WalConflict,
  walLiveBlocks,
  WalNotArchived,
} from "./store/wal_archive.ts";
export {
  AsyncPushFailed,
  type AsyncPushOptions,
  type AsyncPushResult,
  defaultPushSpool,
  pushWalAsync,
} from "./store/wal_push_async.ts";
export {
  type PushDaemonOptions,
  type PushDaemonResult,
  runPushDaemon,
} from "./store/wal_push_daemon.ts";
export {
  defaultFetchSpool,
  fetchWalPrefetched,
  type PrefetchOptions,
} from "./store/wal_prefetch.ts";
export {
  type PrefetchDaemonOptions,
  type PrefetchDaemonResult,
  runPrefetchDaemon,
} from "./store/wal_prefetch_daemon.ts";
export {
  formatLsn,
  parseWalName,
  type WalFileKind,
  type WalName,
  type WalRecord,
} from "./formats/wal.ts";
export { planRetention, type RetentionDecision, type RetentionRules } from "./store/retention.ts";
export {
  type CopiedManifest,
  copy,
  type CopyEvent,
  type CopyEventSink,
  type CopyOptions,
  type CopyProgressEvent,
  type CopyResult,
} from "./store/copy.ts";
export { dirSource } from "./sources/dir/dir_source.ts";
export type {
  DirPart,
  ObjectsPart,
  Source,
  SourceInfo,
  SourceObject,
  SourcePart,
  StreamPart,
} from "./sources/types.ts";
export {
  clusterSource,
  type ClusterSourceOptions,
  META_EXPORT_FILE,
} from "./sources/databend/cluster_source.ts";
export {
  type ClusterRestoreOptions,
  type ClusterRestorePlan,
  type ClusterRestoreResult,
  planClusterRestore,
  restoreCluster,
} from "./sources/databend/cluster_target.ts";
export { openClusterStorage } from "./sources/databend/cluster_storage.ts";
export {
  loadQueryConfig,
  parseQueryConfig,
  type QueryConfig,
  type StorageConfig,
  storageLocation,
} from "./sources/databend/query_config.ts";
export { loadMetaConfig, type MetaNodeConfig } from "./sources/databend/meta_config.ts";
export { buildCatalog, CatalogBuilder } from "./sources/databend/catalog.ts";
export {
  lastAppliedIndex,
  logCommand,
  type LoggedCommand,
  MetaState,
  type StoredValue,
} from "./sources/databend/meta_state.ts";
export {
  decodeTableSnapshot,
  parseTimestampUs,
  type TableSnapshotInfo,
} from "./sources/databend/table_snapshot.ts";
export {
  type CapturedObjects,
  scanTableSnapshots,
  type SnapshotScan,
} from "./sources/databend/snapshot_scan.ts";
export { decodeSegmentObjects } from "./sources/databend/table_segment.ts";
export {
  type ChosenSnapshot,
  parseTableName as parseDatabendTableName,
  type PlannedTable,
  planTableRestore,
  removeStaged,
  type StagedObject,
  stageTableRestore,
  type TableRestoreOptions,
  type TableRestorePlan,
  type TableSelection,
} from "./sources/databend/table_restore.ts";
export {
  type QueryEndpoint,
  runStatements,
  type RunStatementsOptions,
} from "./sources/databend/query_http.ts";
export {
  formatTimestampUs,
  type SnapshotJson,
  tableSnapshots,
  type TableSnapshotsJson,
} from "./sources/databend/table_window.ts";
export { exportMetaGrpc, MetaServiceError } from "./sources/databend/meta_grpc.ts";
export {
  isPgUri,
  PgConnection,
  type PgConnectOptions,
  type PgTarget,
  redactUri,
  resolvePgUri,
} from "./sources/postgres/connection.ts";
export {
  PG_DATA_PART,
  PG_LABEL_PART,
  PG_SOURCE_TYPE,
  PG_TABLESPACE_MAP_PART,
  type PgBackupSettings,
  pgExcluded,
  pgPartExclude,
  pgSource,
  type PgSourceOptions,
  type PgTablespace,
  tablespacePartName,
} from "./sources/postgres/pg_source.ts";
export {
  type FoundTable,
  loadRelationMap,
  parseTableName,
  PG_RELATIONS_PART,
  type PgDatabaseMap,
  type PgRelationFiles,
  type PgRelationMap,
  type PgSchemaMap,
  type PgTableMap,
  readRelationMap,
  relationSelector,
  selectionOf,
  type TableName,
  withRelationMap,
  type WithRelationMapOptions,
} from "./sources/postgres/relation_map.ts";
export {
  type PgTableRestoreItem,
  type PgTableRestoreOptions,
  type PgTableRestorePlan,
  type PgTableRestoreResult,
  planPgTableRestore,
  restorePgTables,
} from "./sources/postgres/table_restore.ts";
export { type ChunkerParams, DEFAULT_FASTCDC, DEFAULT_FIXED } from "./formats/chunker.ts";
export { type CompressionOptions, DEFAULT_COMPRESSION } from "./formats/codec.ts";
export type {
  Catalog,
  CatalogSnapshot,
  CatalogTable,
  Manifest,
  ManifestPart,
  ManifestStats,
} from "./formats/manifest.ts";
export { parseRepoUri, type RepoUri } from "./formats/uri.ts";
export { FORMAT_VERSION, TOOL_VERSION } from "./formats/version.ts";
