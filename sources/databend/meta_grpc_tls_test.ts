import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startMetaService } from "../../testing/meta_service.ts";
import { tempDir } from "../../testing/mod.ts";
import { backup } from "../../store/backup/backup.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { clusterSource } from "./cluster_source.ts";
import { exportMetaGrpc } from "./meta_grpc.ts";
import { parseQueryConfig } from "./query_config.ts";

const TLS = new URL("../../testdata/tls/", import.meta.url);
const CERT = fs.readFileSync(new URL("meta-cert.pem", TLS), "utf8");
const KEY = fs.readFileSync(new URL("meta-key.pem", TLS), "utf8");
const LINES = [
  '["header",{"DataHeader":{"key":"header","value":{"version":"V004"}}}]',
  '["raft_log",{"NodeId":1}]',
];

async function collect(it: AsyncIterable<Uint8Array>): Promise<string> {
  let s = "";
  for await (const c of it) s += new TextDecoder().decode(c);
  return s;
}

Deno.test("exportMetaGrpc over TLS trusts the configured CA and checks the domain name", async () => {
  const meta = await startMetaService({ lines: LINES, tls: { key: KEY, cert: CERT } });
  try {
    const text = await collect(
      exportMetaGrpc([meta.endpoint], {
        tls: { ca: CERT, servername: "meta.test" },
        timeoutMs: 5000,
      }),
    );
    assert.equal(text, LINES.join("\n") + "\n");
    // Without the CA, or with another name, the endpoint is not trusted: not reached.
    await assert.rejects(
      collect(exportMetaGrpc([meta.endpoint], { timeoutMs: 5000 })),
      /cannot reach the meta service .*a meta service with TLS needs rpc_tls_meta_server_root_ca_cert/,
    );
    await assert.rejects(
      collect(
        exportMetaGrpc([meta.endpoint], {
          tls: { ca: CERT, servername: "other.test" },
          timeoutMs: 5000,
        }),
      ),
      /ALTNAME|altname|Hostname|CERT/i,
    );
  } finally {
    await meta.close();
  }
});

Deno.test("the query config's rpc_tls_meta_server_root_ca_cert turns TLS on for a cluster backup", async () => {
  await using t = await tempDir();
  const meta = await startMetaService({ lines: LINES, tls: { key: KEY, cert: CERT } });
  try {
    fs.copyFileSync(new URL("meta-cert.pem", TLS), path.join(t.dir, "ca.pem"));
    fs.mkdirSync(path.join(t.dir, "data"));
    const config = path.join(t.dir, "query-node.toml");
    fs.writeFileSync(
      config,
      `[query]\ntenant_id = "t"\ncluster_id = "c"\n[meta]\nendpoints = ["${meta.endpoint}"]\n` +
        `rpc_tls_meta_server_root_ca_cert = "ca.pem"\nrpc_tls_meta_service_domain_name = "meta.test"\n` +
        `[storage]\ntype = "fs"\n[storage.fs]\ndata_path = "data"\n`,
    );
    const parsed = parseQueryConfig(fs.readFileSync(config, "utf8"), config);
    assert.deepEqual(parsed.meta.tls, {
      caCertPath: path.join(t.dir, "ca.pem"),
      domainName: "meta.test",
    });
    const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
    const r = await backup(store, await clusterSource(config), { workers: 0 });
    assert.equal(r.manifest.parts[0]!.stats.bytes, (LINES.join("\n") + "\n").length);

    fs.rmSync(path.join(t.dir, "ca.pem"));
    const store2 = await FsStore.open(path.join(t.dir, "repo2"), { create: true });
    await assert.rejects(
      async () => await backup(store2, await clusterSource(config), { workers: 0 }),
      /the meta service CA certificate .*ca.pem \(rpc_tls_meta_server_root_ca_cert\) cannot be read/,
    );
  } finally {
    await meta.close();
  }
});
