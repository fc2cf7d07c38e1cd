/**
 * The protobuf message types of the repository format, loaded from the
 * generated descriptor (no .proto parsing at run time, so the single
 * executable needs no schema file).
 *
 * @module
 */
import protobuf from "protobufjs/light";
import { descriptor } from "./descriptor.ts";

const root = protobuf.Root.fromJSON(descriptor as unknown as protobuf.INamespace);

/** The `bendsave.v1.Tree` message type. */
export const TreeType: protobuf.Type = root.lookupType("bendsave.v1.Tree");
/** The `bendsave.v1.Manifest` message type. */
export const ManifestType: protobuf.Type = root.lookupType("bendsave.v1.Manifest");

/** Converts a protobufjs 64-bit value (number or Long) to a number. */
export function toNumber(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") return v;
  if (typeof v === "object" && v !== null && "toNumber" in v) {
    return (v as { toNumber(): number }).toNumber();
  }
  return Number(v);
}

/** The `bendsave.v1.WalFile` message type (a WAL archive record, since format 1.2). */
export const WalFileType: protobuf.Type = root.lookupType("bendsave.v1.WalFile");
