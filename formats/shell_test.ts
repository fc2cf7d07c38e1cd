import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { shellQuote } from "./shell.ts";

Deno.test("shellQuote leaves plain words alone and quotes the rest so sh reads them back exactly", () => {
  assert.equal(shellQuote("/backups/pg"), "/backups/pg");
  assert.equal(shellQuote("s3://b/p?region=eu-west-1"), "'s3://b/p?region=eu-west-1'");
  for (const word of ["it's", "a b", "$HOME", "x;rm -rf /", "", "`id`", "tab\there"]) {
    const back = execFileSync("sh", ["-c", `printf %s ${shellQuote(word)}`], { encoding: "utf8" });
    assert.equal(back, word, word);
  }
});
