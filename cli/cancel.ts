/**
 * Ctrl-C for the CLI: SIGINT and SIGTERM abort one AbortController, whose
 * signal every long operation takes. The operation stops at its next safe
 * point, releases its locks and removes its temporary files; the CLI then
 * exits 130 with one line. A second signal while it cleans up exits at
 * once.
 *
 * @module
 */
import process from "node:process";
import { Cancelled } from "../store/errors.ts";
import { ExitCode } from "./exit_codes.ts";

/** The signals that cancel an operation. */
const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** One command run's cancellation: its signal, and the name of the signal that aborted it. */
export class CancelScope {
  readonly #controller = new AbortController();
  readonly #listeners: [NodeJS.Signals, () => void][] = [];
  #received: string | null = null;

  /** Aborted by the first SIGINT or SIGTERM (its reason is a {@linkcode Cancelled}). */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The signal that cancelled the run ("SIGINT"), or null. */
  get received(): string | null {
    return this.#received;
  }

  /** Installs the handlers (a no-op where the runtime has no signals, as on Windows for SIGTERM). */
  install(): this {
    for (const sig of SIGNALS) {
      const listener = () => this.#on(sig);
      try {
        // node:process, so the bun-built executable (no Deno namespace) has it too.
        process.on(sig, listener);
        this.#listeners.push([sig, listener]);
      } catch {
        // not supported here: that signal keeps its default action
      }
    }
    return this;
  }

  /** Removes the handlers again (so the process can end). */
  uninstall(): void {
    for (const [sig, listener] of this.#listeners.splice(0)) {
      try {
        process.off(sig, listener);
      } catch {
        // already gone
      }
    }
  }

  #on(sig: string): void {
    if (this.#received !== null) {
      // A second signal: stop cleaning up and exit now.
      console.error(
        `bendsave: cancelled again (${sig}): exiting without cleaning up; the next backup or vacuum removes temporary files and stale locks`,
      );
      Deno.exit(ExitCode.cancelled);
    }
    this.#received = sig;
    this.#controller.abort(new Cancelled(`cancelled (${sig})`));
  }
}

/** The one line the CLI prints for a cancelled operation. */
export function cancelledLine(e: Cancelled, received: string | null): string {
  return `cancelled (${received ?? "aborted"}): ${e.committed ?? "nothing was committed"}`;
}
