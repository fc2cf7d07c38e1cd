import assert from "node:assert/strict";
import { descriptor } from "./descriptor.ts";
import { descriptorSource } from "./gen.ts";
import { ManifestType, TreeType } from "./mod.ts";

const PROTO = new URL("bendsave.proto", import.meta.url);
const DESCRIPTOR = new URL("descriptor.ts", import.meta.url);

Deno.test("descriptorSource of bendsave.proto equals the committed descriptor.ts", async () => {
  const want = descriptorSource(await Deno.readTextFile(PROTO));
  const got = await Deno.readTextFile(DESCRIPTOR);
  assert.equal(
    got,
    want,
    "proto/descriptor.ts is stale: run `deno task proto` and commit the result",
  );
});

Deno.test("descriptorSource output changes when the schema changes", async () => {
  const text = await Deno.readTextFile(PROTO);
  const changed = text.replace(
    "Catalog catalog = 17;",
    "Catalog catalog = 17;\n  string added = 18;",
  );
  assert.notEqual(changed, text, "the schema still declares Manifest.catalog = 17");
  assert.notEqual(descriptorSource(changed), descriptorSource(text));
});

Deno.test("descriptor declares the Tree and Manifest messages the bindings load", () => {
  const v1 = descriptor.nested.bendsave.nested.v1.nested;
  assert.equal(v1.Tree.fields.nodes.id, 1);
  assert.equal(v1.Manifest.fields.formatVersion.id, 1);
  assert.equal(TreeType.fullName, ".bendsave.v1.Tree");
  assert.equal(ManifestType.fullName, ".bendsave.v1.Manifest");
});

Deno.test("FORMAT.md Appendix A holds proto/bendsave.proto verbatim", async () => {
  const proto = await Deno.readTextFile(new URL("./bendsave.proto", import.meta.url));
  const format = await Deno.readTextFile(new URL("../FORMAT.md", import.meta.url));
  const appendix = format.slice(format.indexOf("## Appendix A"));
  assert.ok(appendix.includes(proto), "update Appendix A of FORMAT.md from proto/bendsave.proto");
});
