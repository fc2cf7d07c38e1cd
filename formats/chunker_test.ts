import assert from "node:assert/strict";
import {
  type ChunkerParams,
  createChunker,
  DEFAULT_FASTCDC,
  DEFAULT_FIXED,
  splitAll,
  validateChunkerParams,
} from "./chunker.ts";

/** Deterministic pseudo-random bytes (xorshift32) so failures reproduce. */
function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed | 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

function throwsWith(fn: () => unknown, type: ErrorConstructor, quoted: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    assert.ok(e.message.includes(quoted), `message ${JSON.stringify(e.message)} lacks ${quoted}`);
    assert.ok(e.message.endsWith("."), "one sentence ending with a period");
    return true;
  });
}

const SMALL_CDC: ChunkerParams = { kind: "fastcdc", min: 256, avg: 1024, max: 4096 };

Deno.test("DEFAULT_FIXED is 8 MiB fixed blocks and DEFAULT_FASTCDC is 512K/2M/8M", () => {
  assert.deepEqual(DEFAULT_FIXED, { kind: "fixed", size: 8388608 });
  assert.deepEqual(DEFAULT_FASTCDC, {
    kind: "fastcdc",
    min: 512 * 1024,
    avg: 2 * 1024 * 1024,
    max: 8 * 1024 * 1024,
  });
  assert.ok(Object.isFrozen(DEFAULT_FIXED) && Object.isFrozen(DEFAULT_FASTCDC));
  assert.deepEqual(validateChunkerParams(DEFAULT_FIXED), DEFAULT_FIXED);
  assert.deepEqual(validateChunkerParams(DEFAULT_FASTCDC), DEFAULT_FASTCDC);
});

Deno.test("validateChunkerParams returns a clean copy of valid params", () => {
  const raw: unknown = JSON.parse('{"kind":"fastcdc","min":256,"avg":1024,"max":4096,"seed":7}');
  const p = validateChunkerParams(raw);
  assert.deepEqual(p, { kind: "fastcdc", min: 256, avg: 1024, max: 4096, seed: 7 });
  assert.notEqual(p, raw);
  const noSeed = validateChunkerParams({ kind: "fastcdc", min: 256, avg: 1024, max: 4096 });
  assert.ok(!("seed" in noSeed), "an absent seed stays absent");
  assert.deepEqual(validateChunkerParams({ kind: "fixed", size: 64 }), { kind: "fixed", size: 64 });
});

Deno.test("validateChunkerParams rejects wrong shapes with a TypeError quoting the value", () => {
  throwsWith(() => validateChunkerParams(null), TypeError, "got null");
  throwsWith(() => validateChunkerParams("fixed"), TypeError, 'got "fixed"');
  throwsWith(() => validateChunkerParams([1, 2]), TypeError, "got [1,2]");
  throwsWith(() => validateChunkerParams(8n), TypeError, "got 8n");
  throwsWith(() => validateChunkerParams({ size: 64 }), TypeError, "got undefined");
  throwsWith(() => validateChunkerParams({ kind: 1 }), TypeError, "got 1");
  throwsWith(() => validateChunkerParams({ kind: "fixed" }), TypeError, '"size", got undefined');
  throwsWith(() => validateChunkerParams({ kind: "fixed", size: "8M" }), TypeError, 'got "8M"');
  throwsWith(
    () => validateChunkerParams({ kind: "fixed", size: 64, avg: 1024 }),
    TypeError,
    'unknown field "avg"',
  );
  throwsWith(
    () => validateChunkerParams({ kind: "fastcdc", min: 256, avg: 1024 }),
    TypeError,
    '"max", got undefined',
  );
  throwsWith(
    () => validateChunkerParams({ kind: "fastcdc", min: 256, avg: 1024, max: 4096, seed: "1" }),
    TypeError,
    'got "1"',
  );
});

Deno.test("validateChunkerParams rejects bad values with a RangeError quoting the value", () => {
  throwsWith(() => validateChunkerParams({ kind: "rabin" }), RangeError, 'got "rabin"');
  throwsWith(() => validateChunkerParams({ kind: "fixed", size: 0 }), RangeError, "got 0;");
  throwsWith(() => validateChunkerParams({ kind: "fixed", size: 1.5 }), RangeError, "got 1.5;");
  throwsWith(() => validateChunkerParams({ kind: "fixed", size: NaN }), RangeError, "got NaN;");
  throwsWith(
    () => validateChunkerParams({ kind: "fastcdc", min: 256, avg: 1000, max: 4096 }),
    RangeError,
    "got 1000;",
  );
  throwsWith(
    () => validateChunkerParams({ kind: "fastcdc", min: 2048, avg: 1024, max: 4096 }),
    RangeError,
    "got 2048;",
  );
  throwsWith(
    () => validateChunkerParams({ kind: "fastcdc", min: 256, avg: 1024, max: 512 }),
    RangeError,
    "got 512;",
  );
  throwsWith(
    () => validateChunkerParams({ kind: "fastcdc", min: 256, avg: 1024, max: 4096, seed: -3 }),
    RangeError,
    "got -3;",
  );
});

Deno.test("createChunker validates its params", () => {
  assert.throws(() => createChunker({ kind: "fixed", size: 0 }), RangeError);
  assert.throws(
    () => createChunker({ kind: "other" } as unknown as ChunkerParams),
    RangeError,
  );
});

Deno.test("createChunker streams the same lengths as splitAll", () => {
  const data = randomBytes(200_000, 5);
  for (const params of [{ kind: "fixed", size: 4096 } as const, SMALL_CDC]) {
    const c = createChunker(params);
    const got: number[] = [];
    for (let offset = 0; offset < data.length; offset += 777) {
      got.push(...c.push(data.subarray(offset, offset + 777)));
    }
    const last = c.finish();
    if (last > 0) got.push(last);
    assert.deepEqual(got, splitAll(params, data));
  }
});

Deno.test("splitAll returns no block for an empty buffer", () => {
  assert.deepEqual(splitAll(DEFAULT_FIXED, new Uint8Array(0)), []);
  assert.deepEqual(splitAll(DEFAULT_FASTCDC, new Uint8Array(0)), []);
});

Deno.test("splitAll lengths are positive and sum to the input length", () => {
  const data = randomBytes(300_001, 9);
  for (const params of [{ kind: "fixed", size: 1000 } as const, SMALL_CDC]) {
    const lengths = splitAll(params, data);
    assert.ok(lengths.every((n) => n > 0));
    assert.equal(lengths.reduce((a, b) => a + b, 0), data.length);
  }
  assert.deepEqual(splitAll({ kind: "fixed", size: 64 }, new Uint8Array(130)), [64, 64, 2]);
});
