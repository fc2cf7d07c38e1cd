/**
 * The few declarations of the npm `pg` client (node-postgres) that
 * connection.ts uses. Written here rather than taken from `@types/pg`, which
 * pulls `@types/node` into the program and changes the types of `node:`
 * modules everywhere.
 *
 * @module
 */

/** Options of a client, as connection.ts passes them. */
export interface ClientConfig {
  host?: string;
  port?: number;
  user?: string;
  database?: string;
  password?: string | (() => string | Promise<string>);
  connectionTimeoutMillis?: number;
  application_name?: string;
  [option: string]: unknown;
}

/** The result of one statement. */
export interface QueryResult {
  rows: Record<string, unknown>[];
}

/** One connection. */
export class Client {
  constructor(config: ClientConfig);
  connect(): Promise<void>;
  /** Several statements give one result each. */
  query(text: string, values?: unknown[]): Promise<QueryResult | QueryResult[]>;
  end(): Promise<void>;
  on(event: "error", listener: (e: Error) => void): this;
}

declare const pg: { Client: typeof Client };
export default pg;
