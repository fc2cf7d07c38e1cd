/**
 * A map from the block ids of one repository to new ids (the ids the same
 * plaintext has under another key), for a copy that re-encrypts. Keyed by
 * the block's position in the source's {@linkcode BlockIndex}, so it holds
 * no id of its own: 33 bytes per mapped block (the new id and a flag), in
 * pages of 1024 positions allocated on first use. Its memory is therefore
 * bounded by 33 bytes times the blocks of the source index (which itself
 * costs about 55-60 bytes a block), and by 33 KiB times the pages touched.
 *
 * @module
 */
import { ID_LENGTH } from "../formats/hash.ts";
import type { BlockIndex } from "./block_index.ts";

const PAGE = 1024;

/** New ids of the blocks of one block index. */
export class IdRemap {
  readonly #index: BlockIndex;
  readonly #pages = new Map<number, { ids: Uint8Array; set: Uint8Array }>();
  #size = 0;

  /** A map over the blocks of `index` (which must not lose blocks meanwhile). */
  constructor(index: BlockIndex) {
    this.#index = index;
  }

  /** Blocks mapped. */
  get size(): number {
    return this.#size;
  }

  /** Bytes held by the pages. */
  memoryBytes(): number {
    return this.#pages.size * PAGE * (ID_LENGTH + 1);
  }

  /** The new id of `id`, or undefined when it is not mapped (or not in the index). */
  get(id: Uint8Array): Uint8Array | undefined {
    const pos = this.#index.position(id);
    if (pos < 0) return undefined;
    const page = this.#pages.get(Math.floor(pos / PAGE));
    const slot = pos % PAGE;
    if (!page || page.set[slot] === 0) return undefined;
    return page.ids.slice(slot * ID_LENGTH, (slot + 1) * ID_LENGTH);
  }

  /** Maps `id` (a block of the index) to `to`; a RangeError when `id` is not in the index. */
  set(id: Uint8Array, to: Uint8Array): void {
    if (to.length !== ID_LENGTH) throw new RangeError(`a block id is ${ID_LENGTH} bytes`);
    const pos = this.#index.position(id);
    if (pos < 0) throw new RangeError("the block to map is not in the source index");
    const n = Math.floor(pos / PAGE);
    let page = this.#pages.get(n);
    if (!page) {
      page = { ids: new Uint8Array(PAGE * ID_LENGTH), set: new Uint8Array(PAGE) };
      this.#pages.set(n, page);
    }
    const slot = pos % PAGE;
    if (page.set[slot] === 0) this.#size++;
    page.set[slot] = 1;
    page.ids.set(to, slot * ID_LENGTH);
  }
}
