import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { isPgUri, PgConnection, redactUri, resolvePgUri } from "./connection.ts";
import { AccessDenied, DatabaseError, InvalidInput } from "../../store/errors.ts";
import { pgIgnore, startPgCluster } from "../../testing/pg_cluster.ts";

/** The error `fn` rejects with, checked to be an instance of `cls`. */
async function rejectsWith<E extends Error>(
  fn: () => Promise<unknown>,
  cls: new (...a: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    return e;
  }
  throw new Error(`expected ${cls.name}, nothing was thrown`);
}

Deno.test("isPgUri takes postgresql:// and postgres:// only", () => {
  assert.ok(isPgUri("postgresql://u@/db"));
  assert.ok(isPgUri("postgres://u@h/db"));
  assert.ok(!isPgUri("/var/lib/postgresql"));
  assert.ok(!isPgUri("s3://bucket/x"));
});

Deno.test("resolvePgUri takes the socket directory and port from the query", () => {
  const t = resolvePgUri("postgresql://app@/shop?host=/run/pg&port=5433", {});
  assert.deepEqual([t.host, t.port, t.user, t.database], ["/run/pg", 5433, "app", "shop"]);
  const enc = resolvePgUri("postgresql://%2Frun%2Fpg:6000/shop", { PGUSER: "x" });
  assert.deepEqual([enc.host, enc.port, enc.user], ["/run/pg", 6000, "x"]);
});

Deno.test("resolvePgUri fills what the URI leaves out from the PG* variables", () => {
  const t = resolvePgUri("postgresql://", {
    PGHOST: "db.example",
    PGPORT: "6543",
    PGUSER: "ops",
    PGDATABASE: "sales",
  });
  assert.deepEqual(t.shown, "ops@db.example:6543/sales");
  const u = resolvePgUri("postgres://me@tcp.host:7000/x", { PGHOST: "other", PGPORT: "1" });
  assert.deepEqual(u.shown, "me@tcp.host:7000/x");
});

Deno.test("resolvePgUri refuses a bad port, quoting it, without the password", () => {
  const e = (() => {
    try {
      resolvePgUri("postgresql://u:hunter2@h/db?port=99999", {});
    } catch (e) {
      return e as Error;
    }
    throw new Error("no error");
  })();
  assert.ok(e instanceof InvalidInput);
  assert.ok(e.message.includes('"99999"'), e.message);
  assert.ok(!e.message.includes("hunter2"), e.message);
});

Deno.test("redactUri hides the password", () => {
  assert.deepEqual(redactUri("postgresql://u:p%40ss@h:1/db"), "postgresql://u:***@h:1/db");
  assert.deepEqual(
    redactUri("postgres://h/db?password=x&port=1"),
    "postgres://h/db?password=***&port=1",
  );
});

Deno.test({
  name: "PgConnection connects over a Unix socket, TCP, PG* variables and ~/.pgpass",
  ignore: pgIgnore,
  fn: async () => {
    await using pg = await startPgCluster({ tcp: true, password: "s3cret'pw" });
    const socket = await PgConnection.connect(pg.uri());
    assert.deepEqual(await socket.value("SELECT current_user"), "postgres");
    await socket.close();

    const tcp = await PgConnection.connect(
      pg.uri({ tcp: true, user: "bendsave_pw", password: "s3cret'pw" }),
    );
    assert.deepEqual(await tcp.value("SELECT current_user"), "bendsave_pw");
    await tcp.close();

    const byEnv = await PgConnection.connect("postgresql://", {
      env: {
        PGHOST: pg.socketDir,
        PGPORT: String(pg.port),
        PGUSER: "bendsave_pw",
        PGPASSWORD: "s3cret'pw",
        PGDATABASE: "template1",
      },
    });
    assert.deepEqual(await byEnv.value("SELECT current_database()"), "template1");
    await byEnv.close();

    // ~/.pgpass: a socket connection matches a "localhost" line, as in libpq.
    const home = path.join(pg.root, "home");
    fs.mkdirSync(home);
    const passFile = path.join(home, ".pgpass");
    fs.writeFileSync(passFile, `localhost:${pg.port}:*:bendsave_pw:s3cret'pw\n`, { mode: 0o600 });
    const oldPassFile = Deno.env.get("PGPASSFILE");
    const oldPassword = Deno.env.get("PGPASSWORD");
    Deno.env.set("PGPASSFILE", passFile);
    Deno.env.delete("PGPASSWORD");
    try {
      const viaFile = await PgConnection.connect(pg.uri({ user: "bendsave_pw" }));
      assert.deepEqual(await viaFile.value("SELECT current_user"), "bendsave_pw");
      await viaFile.close();
      const viaFileTcp = await PgConnection.connect(
        `postgresql://bendsave_pw@localhost:${pg.port}/postgres`,
      );
      assert.deepEqual(await viaFileTcp.value("SELECT 1"), 1);
      await viaFileTcp.close();
    } finally {
      if (oldPassFile === undefined) Deno.env.delete("PGPASSFILE");
      else Deno.env.set("PGPASSFILE", oldPassFile);
      if (oldPassword !== undefined) Deno.env.set("PGPASSWORD", oldPassword);
    }
  },
});

Deno.test({
  name: "PgConnection refuses a wrong password in one line that does not contain it",
  ignore: pgIgnore,
  fn: async () => {
    await using pg = await startPgCluster({ tcp: true, password: "right-one" });
    for (
      const uri of [
        pg.uri({ user: "bendsave_pw", password: "Wr0ng-Secret%" }),
        pg.uri({ tcp: true, user: "bendsave_pw", password: "Wr0ng-Secret%" }),
      ]
    ) {
      const e = await rejectsWith(() => PgConnection.connect(uri, { env: {} }), AccessDenied);
      assert.ok(!e.message.includes("Wr0ng"), e.message);
      assert.ok(!e.message.includes("\n"), e.message);
      assert.ok(e.message.includes("bendsave_pw"), e.message);
    }
    const none = await rejectsWith(
      () => PgConnection.connect(pg.uri({ user: "bendsave_pw" }), { env: {} }),
      AccessDenied,
    );
    assert.ok(none.message.includes("password"), none.message);
  },
});

Deno.test({
  name: "PgConnection reports a server that is not there as a DatabaseError",
  ignore: pgIgnore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const e = await rejectsWith(
        () => PgConnection.connect(`postgresql://postgres@/postgres?host=${dir}&port=5999`),
        DatabaseError,
      );
      assert.ok(e.message.includes(dir), e.message);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
