// Where things live on the single leaf vdev (include/sys/vdev_impl.h).
export const VDEV_LABEL_SIZE = 256 * 1024;
export const VDEV_BOOT_SIZE = 3.5 * 1024 * 1024;
/** Two labels plus the boot block region precede the allocatable area. */
export const VDEV_LABEL_START_SIZE = 2 * VDEV_LABEL_SIZE + VDEV_BOOT_SIZE;
export const VDEV_LABEL_END_SIZE = 2 * VDEV_LABEL_SIZE;
export const SPA_MINDEVSIZE = 64 * 1024 * 1024;

export interface VdevGeometry {
  /** Size of the image file. */
  fileSize: number;
  /** The size OpenZFS uses: the file size aligned down to a label. */
  psize: number;
  /** Allocatable bytes (vdev_asize). */
  asize: number;
  ashift: number;
  msShift: number;
  msCount: number;
}

export function highbit64(v: number): number {
  // position of the highest set bit, 1-based (OpenZFS highbit64)
  let n = 0;
  while (v >= 1) { v = Math.floor(v / 2); n++; }
  return n;
}

/** Above this many metaslabs OpenZFS sets one aside for the embedded log class (zfs_embedded_slog_min_ms). */
export const EMBEDDED_SLOG_MIN_MS = 64;

/**
 * Metaslab size like OpenZFS's vdev_metaslab_set_size(): at least 16
 * metaslabs on small vdevs, 512 MiB in between, about 200 on large ones,
 * never below 16 MiB (SPA_MAXBLOCKSIZE) or above 16 GiB.
 */
export function defaultMsShift(asize: number): number {
  const defaultShift = 29, minCount = 16, defaultCount = 200;
  const count = Math.floor(asize / 2 ** defaultShift);
  let shift: number;
  if (count < minCount) shift = highbit64(Math.floor(asize / minCount));
  else if (count > defaultCount) shift = highbit64(Math.floor(asize / defaultCount));
  else shift = defaultShift;
  return Math.min(Math.max(shift, 24), 34);
}

export function vdevGeometry(fileSize: number, ashift: number, msSize?: number): VdevGeometry {
  const psize = Math.floor(fileSize / VDEV_LABEL_SIZE) * VDEV_LABEL_SIZE;
  const asize = psize - VDEV_LABEL_START_SIZE - VDEV_LABEL_END_SIZE;
  const msShift = msSize !== undefined ? Math.log2(msSize) : defaultMsShift(asize);
  const msCount = Math.floor(asize / 2 ** msShift);
  return { fileSize, psize, asize, ashift, msShift, msCount };
}

// OpenZFS keeps a slop reservation out of reach of ordinary writes
// (spa_get_slop_space in spa_misc.c): 1/32 of the normal class's space, at
// least 128 MiB but never more than half the pool, at most 128 GiB. On a
// small pool that is far more than 1/32: a 224 MiB pool reserves 112 MiB.
const SPA_SLOP_SHIFT = 5;
const SPA_MIN_SLOP = 128 * 1024 * 1024;
const SPA_MAX_SLOP = 128 * 1024 ** 3;

/**
 * The slop reservation of a pool whose normal class holds `dspace` bytes
 * and whose embedded log class `embeddedLog` (the log's space is taken off
 * the 1/32, up to half of it, before the 128 MiB floor applies).
 */
export function spaSlopSpace(dspace: number, embeddedLog = 0): number {
  let slop = Math.min(Math.floor(dspace / 2 ** SPA_SLOP_SHIFT), SPA_MAX_SLOP);
  slop -= Math.min(embeddedLog, Math.floor(slop / 2));
  return Math.max(slop, Math.min(Math.floor(dspace / 2), SPA_MIN_SLOP));
}

/**
 * What ordinary writes (the datasets' `available`, the pool's used space
 * included) can have of a single-vdev pool of `msCount` metaslabs of
 * `msSize` bytes, before anything is allocated.
 */
export function writableSpace(msCount: number, msSize: number): number {
  return normalClassSpace(msCount, msSize) - poolSlopSpace(msCount, msSize);
}

/** The slop reservation of a single-vdev pool of `msCount` metaslabs of `msSize` bytes. */
export function poolSlopSpace(msCount: number, msSize: number): number {
  return spaSlopSpace(normalClassSpace(msCount, msSize), msCount > EMBEDDED_SLOG_MIN_MS ? msSize : 0);
}

/** The normal class's space (spa_get_dspace) of a single-vdev pool: every metaslab but the embedded log's. */
export function normalClassSpace(msCount: number, msSize: number): number {
  return (msCount > EMBEDDED_SLOG_MIN_MS ? msCount - 1 : msCount) * msSize;
}

/**
 * The least normal-class space whose writable part (dspace minus the slop)
 * is at least `writable` bytes, the embedded log left out (fitGeometry
 * counts metaslabs from here).
 */
export function dspaceFor(writable: number): number {
  // dspace - slop grows with dspace: dspace/2 up to 256 MiB, dspace - 128 MiB
  // up to 4 GiB, 31/32 of it up to 4 TiB, then dspace - 128 GiB
  if (writable <= SPA_MIN_SLOP) return 2 * writable;
  if (writable <= 2 ** SPA_SLOP_SHIFT * SPA_MIN_SLOP - SPA_MIN_SLOP) return writable + SPA_MIN_SLOP;
  if (writable <= 2 ** SPA_SLOP_SHIFT * SPA_MAX_SLOP - SPA_MAX_SLOP) return Math.ceil(writable * 2 ** SPA_SLOP_SHIFT / (2 ** SPA_SLOP_SHIFT - 1));
  return writable + SPA_MAX_SLOP;
}
