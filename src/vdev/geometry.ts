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

function highbit64(v: number): number {
  // position of the highest set bit, 1-based (OpenZFS highbit64)
  let n = 0;
  while (v >= 1) { v = Math.floor(v / 2); n++; }
  return n;
}

/**
 * Metaslab size like OpenZFS's vdev_metaslab_set_size(): about 200 metaslabs
 * on large vdevs, at least 16 on small ones, 512 MiB in between, never below
 * 16 MiB (SPA_MAXBLOCKSIZE) or above 16 GiB.
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
