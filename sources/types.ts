/**
 * What a source contributes to a backup. The contract is the engine's
 * (store/source.ts): sources implement it, the engine does not import
 * sources/. Re-exported here for the sources and their callers.
 *
 * @module
 */
export type {
  DirPart,
  ObjectsPart,
  Source,
  SourceConclusion,
  SourceInfo,
  SourceObject,
  SourcePart,
  StreamPart,
} from "../store/source.ts";
