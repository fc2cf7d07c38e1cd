import assert from "node:assert/strict";
import { encodePaperKey, parsePaperKey } from "./paper_key.ts";

const REPO = "9f2c41d07a3e5b18" + "00".repeat(24);
const KEY = new Uint8Array(64).map((_, i) => (i * 37 + 11) & 0xff);

Deno.test("encodePaperKey then parsePaperKey returns the key and the repository prefix", () => {
  const text = encodePaperKey(KEY, REPO);
  const lines = text.trimEnd().split("\n");
  assert.equal(lines.length, 6);
  assert.equal(lines[0], "bendsave master key v1");
  assert.equal(lines[1], "repository 9f2c41d07a3e5b18");
  assert.match(lines[2]!, /^1: ([0-9a-f]{4} ){7}[0-9a-f]{4} {2}[0-9a-f]{2}$/);
  const back = parsePaperKey(text);
  assert.deepEqual(back.key, KEY);
  assert.equal(back.repositoryPrefix, "9f2c41d07a3e5b18");
});

Deno.test("parsePaperKey accepts upper case, extra spaces and blank lines", () => {
  const messy = encodePaperKey(KEY, REPO).toUpperCase().replaceAll(" ", "   ")
    .replaceAll("\n", "\r\n\r\n");
  assert.deepEqual(parsePaperKey(messy).key, KEY);
});

Deno.test("parsePaperKey names the line of a typing mistake", () => {
  const lines = encodePaperKey(KEY, REPO).split("\n");
  const l3 = lines[4]!;
  const i = l3.indexOf(" ") + 1; // the first key digit of line 3
  lines[4] = l3.slice(0, i) + (l3[i] === "0" ? "1" : "0") + l3.slice(i + 1);
  assert.throws(() => parsePaperKey(lines.join("\n")), /line 3 has a typing mistake/);
  const short = encodePaperKey(KEY, REPO).split("\n").slice(0, 5).join("\n");
  assert.throws(() => parsePaperKey(short), /must have 4 key lines/);
  assert.throws(() => parsePaperKey("hello"), /not a bendsave paper key/);
});
