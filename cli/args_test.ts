import assert from "node:assert/strict";
import { parse } from "./args.ts";
import { UsageError } from "./exit_codes.ts";

function usage(args: string[]): string {
  try {
    parse("verify", args, {
      from: { type: "string" },
      manifest: { type: "string", multiple: true },
    });
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    return e.message;
  }
  assert.fail(`${JSON.stringify(args)} parsed`);
}

Deno.test("parse turns parseArgs errors into clean one-line messages", () => {
  const cases: [string[], string][] = [
    [
      ["--foo"],
      'unknown option --foo (a value that starts with "-" goes after "--"): see bendsave verify --help',
    ],
    [
      ["-x"],
      'unknown option -x (a value that starts with "-" goes after "--"): see bendsave verify --help',
    ],
    [["--from"], "--from needs a value: see bendsave verify --help"],
    [["--manifest"], "--manifest needs a value: see bendsave verify --help"],
    [["--json=1"], "--json takes no value: see bendsave verify --help"],
    [
      ["--from", "--json"],
      '--from needs a value, but is followed by the option --json (write --from=<value> for a value that starts with "-"): see bendsave verify --help',
    ],
  ];
  for (const [args, expected] of cases) {
    const message = usage(args);
    assert.equal(message, expected, JSON.stringify(args));
    assert.ok(!message.includes("\n"), message);
    assert.equal((message.match(/'/g) ?? []).length, 0, `no stray quotes: ${message}`);
    assert.equal((message.match(/"/g) ?? []).length % 2, 0, `balanced quotes: ${message}`);
  }
});
