// The shared memory between the build and its file reader thread: a ring of
// slots the reader fills with the staged files' bytes, in the order the
// build asked for them, while the build checksums and places the bytes of
// the slots before. A slot holds the blocks of many small files or part of
// a large one's; its record table says which (file sequence number, length,
// status, where in the slot, bytes taken). Two counters and
// Atomics.wait/notify do the hand-off.
//
// Each record is one whole block as the image stores it: the file's bytes,
// then zeros up to the block size the build asked for, so that the build
// can checksum it and have the image writer thread write it where it lies,
// never copying it.

import { readSync } from 'node:fs';
import { FLETCHER4_RESERVED } from '../zio/fletcher4-memory.js';
import { zeroShared } from '../util/zeros.js';

export const READ_SLOTS = 4;
/**
 * A slot: four records of the largest size (128 KiB), or dozens of small
 * files. 1 MiB slots measured no faster on /usr and cost 2 MiB more RSS
 * (the ring is resident all along).
 */
export const READ_SLOT_BYTES = 512 * 1024;
export const MAX_RECORDS = 1024;

// control words (Int32Array indexes)
export const R_PRODUCED = 0; // slots handed to the build
export const R_CONSUMED = 1; // slots the build is done with
export const R_QUIT = 2;
export const R_STARTED = 3; // 1: the reader thread is running
export const R_FAILED = 4; // 1: it died of something other than a file's error

// record status (the third word of a record)
export const REC_MORE = 0; // more of this file follows
export const REC_LAST = 1; // the file's last piece (or its only one)
export const REC_SHRANK = 2; // end of file before the size the walk saw
export const REC_ERROR = 3; // open/read failed: the length word is node's errno (negative), any code
const CTRL_WORDS = 8;
/** Record words: file sequence number, data length, status, offset in the slot, bytes of the slot taken. */
export const REC_WORDS = 5;
const TABLE_WORDS = 1 + REC_WORDS * MAX_RECORDS;

export interface ReadRing {
  ctrl: Int32Array;
  /** Per slot: record count, then REC_WORDS words per record. */
  table: Int32Array;
  data: Uint8Array;
}

export function tableBase(slot: number): number {
  return slot * TABLE_WORDS;
}

// Layout: the checksum kernel's reserved bytes, control words, record
// tables, then the slots, page-aligned.
const CTRL_OFF = FLETCHER4_RESERVED;
const TABLE_OFF = CTRL_OFF + CTRL_WORDS * 4;
const DATA_OFF = Math.ceil((TABLE_OFF + READ_SLOTS * TABLE_WORDS * 4) / 4096) * 4096;
const WASM_PAGE = 65536;

/**
 * The ring's memory: a shared WebAssembly.Memory, so that the build can
 * run the Fletcher-4 kernel on records where the reader thread put them.
 */
export function allocReadRing(): WebAssembly.Memory {
  const pages = Math.ceil((DATA_OFF + READ_SLOTS * READ_SLOT_BYTES) / WASM_PAGE);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}

export function mapReadRing(sab: SharedArrayBuffer): ReadRing {
  const ctrl = new Int32Array(sab, CTRL_OFF, CTRL_WORDS);
  const table = new Int32Array(sab, TABLE_OFF, READ_SLOTS * TABLE_WORDS);
  const data = new Uint8Array(sab, DATA_OFF, READ_SLOTS * READ_SLOT_BYTES);
  return { ctrl, table, data };
}

/** Whole blocks start at multiples of this in a slot (the checksum kernel reads them in place). */
const BLOCK_ALIGN = 512;

/** Where in a slot filled up to `fill` the next block of `block` bytes goes; -1: the slot has no room left for it. */
export function blockOffset(fill: number, block: number): number {
  const off = Math.ceil(fill / BLOCK_ALIGN) * BLOCK_ALIGN;
  return off + block > READ_SLOT_BYTES ? -1 : off;
}

/**
 * Read `want` bytes of the file at `pos` into `data` at `at`, then zeros up
 * to `block` bytes. false: the file ended first (it shrank since the walk).
 */
export function readBlock(fd: number, data: Uint8Array, at: number, pos: number, want: number, block: number): boolean {
  let got = 0;
  while (got < want) {
    const n = readSync(fd, data, at + got, want - got, pos + got);
    if (n === 0) return false;
    got += n;
  }
  // (0.2 GB of padding on /usr, the tails of its files' last records)
  if (want < block) zeroShared(data, at + want, at + block);
  return true;
}
