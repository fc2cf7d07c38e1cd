import assert from "node:assert/strict";
import { sha256 } from "./hash.ts";
import { TreeType } from "../proto/mod.ts";
import { decodeTree, encodeTree, nameFields, NodeType, type TreeNode } from "./tree.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function file(name: string, size: number, blocks: Uint8Array[] = []): TreeNode {
  return {
    name,
    type: NodeType.file,
    mode: 0o644,
    mtimeMs: 1_700_000_000_123.25,
    size,
    blocks,
    inode: 12345,
    device: 2049,
    uid: 1000,
    gid: 1000,
  };
}

function dir(name: string, subtree: Uint8Array): TreeNode {
  return {
    name,
    type: NodeType.dir,
    mode: 0o755,
    mtimeMs: 1_600_000_000_000,
    size: 0,
    blocks: [],
    subtree,
    inode: 2,
    device: 2049,
    uid: 0,
    gid: 0,
  };
}

function symlink(name: string, linkTarget: string): TreeNode {
  return {
    name,
    type: NodeType.symlink,
    mode: 0o777,
    mtimeMs: 0.5,
    size: 0,
    blocks: [],
    linkTarget,
    inode: 3,
    device: 2049,
    uid: 1,
    gid: 2,
  };
}

/** UTF-8 byte-wise order, as bendsave.proto documents for tree nodes. */
function utf8Compare(a: string, b: string): number {
  const x = enc(a);
  const y = enc(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

const NODES: TreeNode[] = [
  file("report.parquet", 2 ** 40 + 7, [sha256(enc("b0")), sha256(enc("b1")), sha256(enc("b2"))]),
  file("empty", 0),
  dir("sub", sha256(enc("subtree"))),
  symlink("link", "../target with spaces/ü"),
  file("日本語.txt", 3, [sha256(enc("abc"))]),
  file("emoji-\u{1F600}", 1, [sha256(enc("x"))]),
  { ...file("odd", 5, [sha256(enc("hello"))]), mode: 0o4755, mtimeMs: -1.75, uid: 0xffff_fffe },
  { ...file("big-inode", 0), inode: 2 ** 53 - 1, device: 2 ** 40 },
];

Deno.test("decodeTree round trips file, dir and symlink nodes sorted by name", () => {
  const got = decodeTree(encodeTree(NODES));
  const want = [...NODES].sort((a, b) => utf8Compare(a.name, b.name));
  assert.deepEqual(got, want);
});

Deno.test("decodeTree keeps empty files with no blocks", () => {
  const [n] = decodeTree(encodeTree([file("empty", 0)]));
  assert.equal(n?.size, 0);
  assert.deepEqual(n?.blocks, []);
  assert.equal(n?.type, NodeType.file);
  assert.equal("subtree" in n!, false);
  assert.equal("linkTarget" in n!, false);
});

Deno.test("decodeTree keeps fractional and negative mtimes exactly", () => {
  for (const mtimeMs of [1_700_000_000_123.456, 0.001, -1.75, 1e15 + 0.5]) {
    const [n] = decodeTree(encodeTree([{ ...file("f", 0), mtimeMs }]));
    assert.equal(n?.mtimeMs, mtimeMs);
  }
});

Deno.test("decodeTree keeps sizes, inodes and devices above 2^32", () => {
  for (const v of [2 ** 32, 2 ** 32 + 1, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]) {
    const [n] = decodeTree(encodeTree([{ ...file("f", v), inode: v, device: v }]));
    assert.equal(n?.size, v);
    assert.equal(n?.inode, v);
    assert.equal(n?.device, v);
  }
});

Deno.test("decodeTree keeps unicode names and symlink targets byte-exact", () => {
  const names = [
    "日本語.txt",
    "Ünïcödé",
    "emoji-\u{1F600}",
    "tab\tname",
    "new\nline",
    "\u00e9",
    "e\u0301",
  ];
  const got = decodeTree(encodeTree(names.map((n) => symlink(n, `→${n}`))));
  assert.deepEqual(
    got.map((n) => [n.name, n.linkTarget]).sort(),
    names.map((n) => [n, `→${n}`]).sort(),
  );
});

Deno.test("decodeTree returns block ids as plain 32-byte Uint8Arrays", () => {
  const blocks = [sha256(enc("1")), sha256(enc("2"))];
  const [n] = decodeTree(encodeTree([file("f", 10, blocks)]));
  assert.equal(n?.blocks.length, 2);
  for (const b of n!.blocks) assert.equal(Object.getPrototypeOf(b), Uint8Array.prototype);
  assert.deepEqual(n?.blocks, blocks);
});

Deno.test("decodeTree round trips an empty tree", () => {
  const bytes = encodeTree([]);
  assert.equal(bytes.length, 0);
  assert.deepEqual(decodeTree(bytes), []);
});

Deno.test("encodeTree gives identical bytes for the same nodes in any order", () => {
  const a = encodeTree(NODES);
  const b = encodeTree([...NODES].reverse());
  const c = encodeTree([NODES[3]!, NODES[0]!, ...NODES.slice(4), NODES[2]!, NODES[1]!]);
  assert.deepEqual(b, a);
  assert.deepEqual(c, a);
  assert.deepEqual(encodeTree(decodeTree(a)), a, "re-encoding a decoded tree keeps its id");
});

Deno.test("encodeTree does not reorder the caller's array", () => {
  const nodes = [file("b", 0), file("a", 0)];
  encodeTree(nodes);
  assert.deepEqual(nodes.map((n) => n.name), ["b", "a"]);
});

Deno.test("encodeTree sorts names byte-wise on UTF-8 as bendsave.proto documents", () => {
  // U+FF21 is EF BC A1 in UTF-8 and U+1F600 is F0 9F 98 80: UTF-8 puts U+FF21
  // first, while UTF-16 code units (D83D DE00 < FF21) would put the emoji first.
  const names = ["\u{1F600}", "\uFF21", "z", "Z", "a", "\u00e9", "\u{10000}", "\uE000", "\uFFFF"];
  const got = decodeTree(encodeTree(names.map((n) => file(n, 0)))).map((n) => n.name);
  assert.deepEqual(got, [...names].sort(utf8Compare));
  assert.deepEqual(got, [
    "Z",
    "a",
    "z",
    "\u00e9",
    "\uE000",
    "\uFF21",
    "\uFFFF",
    "\u{10000}",
    "\u{1F600}",
  ]);
});

Deno.test("encodeTree sorts random names from every plane in UTF-8 byte order", () => {
  // Code points from ASCII, the BMP below and above the surrogates, and the astral planes.
  const ranges = [[0x20, 0x7e], [0x80, 0xd7ff], [0xe000, 0xfffd], [0x10000, 0x10ffff]] as const;
  let s = 12345;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const names = new Set<string>();
  while (names.size < 500) {
    let name = "";
    for (let k = 1 + next() % 4; k > 0; k--) {
      const [lo, hi] = ranges[next() % ranges.length]!;
      const cp = lo + next() % (hi - lo + 1);
      if (cp === 0x2f) continue; // "/"
      name += String.fromCodePoint(cp);
    }
    if (name !== "" && name !== "." && name !== "..") names.add(name);
  }
  const got = decodeTree(encodeTree([...names].map((n) => file(n, 0)))).map((n) => n.name);
  assert.deepEqual(got, [...names].sort(utf8Compare));
});

Deno.test("encodeTree throws TypeError on a duplicate name", () => {
  assert.throws(
    () => encodeTree([file("a", 0), dir("b", sha256(enc("t"))), symlink("a", "x")]),
    (e: unknown) => e instanceof TypeError && e.message.includes(`"a"`),
  );
});

Deno.test("encodeTree throws TypeError on empty, '.', '..' and names containing '/'", () => {
  for (const name of ["", ".", "..", "a/b", "/", "/abs", "trailing/"]) {
    assert.throws(
      () => encodeTree([file("ok", 0), file(name, 0)]),
      (e: unknown) => e instanceof TypeError && e.message.includes(`"${name}"`),
      JSON.stringify(name),
    );
  }
});

Deno.test("encodeTree accepts names that only look like dots", () => {
  const names = ["...", ".hidden", "a.", "..b"];
  const got = decodeTree(encodeTree(names.map((n) => file(n, 0)))).map((n) => n.name);
  assert.deepEqual(got, [...names].sort(utf8Compare));
});

Deno.test("decodeTree throws SyntaxError on garbage bytes", () => {
  const garbage = [
    [0xff, 0xff, 0xff], // wire type 7 does not exist
    [0x0a, 0x10], // node field claims 16 bytes, none follow
    [0x0a, 0x02, 0x10], // node truncated inside
    [0x0a, 0x02, 0x10, 0x09], // node type 9 is unknown
    [0x0a, 0x00], // node with no type
  ];
  for (const g of garbage) {
    assert.throws(() => decodeTree(new Uint8Array(g)), SyntaxError, JSON.stringify(g));
  }
});

Deno.test("decodeTree throws SyntaxError on a truncated tree", () => {
  const bytes = encodeTree(NODES);
  for (const n of [1, 2, 10, bytes.length >> 1, bytes.length - 1]) {
    assert.throws(() => decodeTree(bytes.subarray(0, n)), SyntaxError, `first ${n} bytes`);
  }
});

Deno.test("decodeTree round trips a file's etag", () => {
  const etags = [
    '"9b2cf535f27731c974343645a3985328"',
    '"d41d8cd98f00b204e9800998ecf8427e-3"',
    "W/x",
  ];
  const nodes = etags.map((etag, i) => ({ ...file(`obj${i}`, 10 + i), etag }));
  const got = decodeTree(encodeTree(nodes));
  assert.deepEqual(got.map((n) => n.etag), etags);
  assert.deepEqual(got, nodes);
});

Deno.test("decodeTree leaves etag undefined for a node without one", () => {
  const [plain, tagged] = decodeTree(encodeTree([file("a", 1), { ...file("b", 2), etag: '"e"' }]));
  assert.equal(plain?.name, "a");
  assert.equal(plain?.etag, undefined);
  assert.equal("etag" in plain!, false, "no etag key, not an empty string");
  assert.equal(tagged?.etag, '"e"');
  for (const n of decodeTree(encodeTree(NODES))) assert.equal("etag" in n, false, n.name);
});

/** A tree encoded straight with protobuf, bypassing encodeTree's checks (a damaged or hostile writer). */
function rawTree(nodes: Record<string, unknown>[]): Uint8Array {
  return TreeType.encode(TreeType.fromObject({ nodes })).finish();
}

Deno.test("decodeTree throws SyntaxError on two nodes with the same name", () => {
  const sub = sha256(enc("subtree"));
  const cases = [
    [{ name: "f", type: NodeType.symlink, linkTarget: "/etc" }, { name: "f", type: NodeType.file }],
    [{ name: "f", type: NodeType.symlink, linkTarget: "/etc" }, {
      name: "f",
      type: NodeType.dir,
      subtree: sub,
    }],
    [{ name: "a", type: NodeType.file }, { name: "b", type: NodeType.file }, {
      name: "a",
      type: NodeType.file,
    }],
    // The same exact bytes, once as name and once as name_bytes.
    [{ name: "x", type: NodeType.file }, { name: "y", nameBytes: enc("x"), type: NodeType.file }],
    [{ name: "\ufffd", nameBytes: [0xff], type: NodeType.file }, {
      name: "?",
      nameBytes: [0xff],
      type: NodeType.file,
    }],
  ];
  for (const nodes of cases) {
    assert.throws(() => decodeTree(rawTree(nodes)), SyntaxError, JSON.stringify(nodes));
  }
  assert.throws(
    () => decodeTree(rawTree(cases[0]!)),
    (e: Error) => e.message === 'tree holds two entries named "f"',
  );
});

Deno.test("decodeTree accepts nodes out of order (a reader does not depend on it)", () => {
  const got = decodeTree(rawTree([
    { name: "b", type: NodeType.file },
    { name: "a", type: NodeType.file },
  ]));
  assert.deepEqual(got.map((n) => n.name), ["b", "a"]);
});

Deno.test("decodeTree keeps a name that is not valid UTF-8 byte-exact in nameBytes", () => {
  const bad = new Uint8Array([0x61, 0xff, 0x62]); // "a", 0xff, "b"
  const node = { ...file("ignored", 1), ...nameFields(bad) };
  assert.equal(node.name, "a\ufffdb");
  assert.deepEqual(node.nameBytes, bad);
  // A name that is valid UTF-8 gets no nameBytes.
  assert.deepEqual(nameFields(enc("ü")), { name: "ü" });
  const lossyTwin = file("a\ufffdb", 2); // a real U+FFFD name: different bytes, not a duplicate
  const got = decodeTree(encodeTree([node, lossyTwin, file("a", 3)]));
  assert.deepEqual(got.map((n) => n.name), ["a", "a\ufffdb", "a\ufffdb"]);
  // Sorted by exact bytes: 0x61 0xff sorts after 0x61 0xef (U+FFFD in UTF-8).
  assert.deepEqual(got[2]!.nameBytes, bad);
  assert.equal("nameBytes" in got[1]!, false);
  assert.equal("nameBytes" in got[0]!, false);
  // Stored as name_bytes (13) with the lossy name beside it.
  const raw = TreeType.decode(encodeTree([node])) as unknown as {
    nodes: { name: string; nameBytes: Uint8Array }[];
  };
  assert.equal(raw.nodes[0]!.name, "a\ufffdb");
  assert.deepEqual(new Uint8Array(raw.nodes[0]!.nameBytes), bad);
});

Deno.test("decodeTree uses name_bytes over name, and refuses unsafe name_bytes", () => {
  const [n] = decodeTree(rawTree([{ name: "other", nameBytes: [0x6b, 0xfe], type: 1 }]));
  assert.equal(n!.name, "k\ufffd");
  assert.deepEqual(n!.nameBytes, new Uint8Array([0x6b, 0xfe]));
  for (const b of [[0x2e], [0x2e, 0x2e], [0x61, 0x2f, 0xff], [0xff, 0x00]]) {
    assert.throws(
      () => decodeTree(rawTree([{ name: "fine", nameBytes: b, type: 1 }])),
      SyntaxError,
      JSON.stringify(b),
    );
  }
  assert.throws(() => encodeTree([{ ...file("x", 0), nameBytes: new Uint8Array([0xff, 0x2f]) }]));
  assert.throws(
    () =>
      encodeTree([
        { ...file("x", 0), nameBytes: new Uint8Array([0xff]) },
        { ...file("y", 0), nameBytes: new Uint8Array([0xff]) },
      ]),
    TypeError,
  );
});
