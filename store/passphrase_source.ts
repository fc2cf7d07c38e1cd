/**
 * Where an operation gets the passphrase of an encrypted repository when
 * its caller gives none. A module of its own, free of the key code, so
 * that the CLI's argument parser can set it without loading the codecs (the
 * asynchronous wal-push foreground must start light).
 *
 * @module
 */

/** Where an operation gets the passphrase of an encrypted repository: null when none is given. */
export type PassphraseSource = () => Promise<string | null>;

let defaultSource: PassphraseSource = () => Promise.resolve(null);

/**
 * Sets the passphrase source that `Repository.open` uses when its caller
 * gives none (the CLI sets it once from BENDSAVE_PASSWORD, --password-file
 * or --password-command).
 */
export function setPassphraseSource(source: PassphraseSource): void {
  defaultSource = source;
}

/** The passphrase source set by {@linkcode setPassphraseSource}. */
export function passphraseSource(): PassphraseSource {
  return defaultSource;
}
