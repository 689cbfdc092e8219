// Vdev labels (include/sys/vdev_impl.h vdev_label_t): four 256 KiB copies,
// two at each end, each with a boot-environment block, the packed config
// nvlist and the uberblock ring, every region carrying its own SHA-256
// embedded checksum whose verifier is the region's absolute offset.
// OpenSSL's SHA-256 rather than @noble/hashes: the four labels hash ~1 MB,
// ~25 ms of still-cold JavaScript at the end of every build against ~2 ms
import { createHash } from 'node:crypto';
import { rd64le, u64le } from '../util/endian.js';
import { VDEV_LABEL_SIZE } from './geometry.js';

export const ZEC_MAGIC = 0x0210da7ab10c7a11n;
export const ECK_SIZE = 40;
export const VDEV_PAD_SIZE = 8 * 1024;
export const VDEV_BOOTENV_OFFSET = 8 * 1024;
export const VDEV_BOOTENV_SIZE = 8 * 1024;
export const VDEV_PHYS_OFFSET = 16 * 1024;
export const VDEV_PHYS_SIZE = 112 * 1024;
export const VDEV_UBERBLOCK_RING_OFFSET = 128 * 1024;
export const VDEV_UBERBLOCK_RING = 128 * 1024;

/** Absolute offsets of the four labels on a vdev of psize bytes. */
export function labelOffsets(psize: number): number[] {
  return [0, VDEV_LABEL_SIZE, psize - 2 * VDEV_LABEL_SIZE, psize - VDEV_LABEL_SIZE];
}

/** Uberblock slot size: 2^clamp(ashift, 10, 13) (VDEV_UBERBLOCK_SHIFT). */
export function uberblockSlotSize(ashift: number): number {
  return 2 ** Math.min(Math.max(ashift, 10), 13);
}

/**
 * Seal a region with its embedded checksum (zio_eck_t in its last 40 bytes):
 * SHA-256 over the region with the checksum words preset to (offset, 0, 0, 0).
 */
export function sealEmbedded(region: Uint8Array, absOffset: number): void {
  const e = region.length - ECK_SIZE;
  u64le(region, e, ZEC_MAGIC);
  region.fill(0, e + 8, e + ECK_SIZE);
  u64le(region, e + 8, absOffset);
  const d = createHash('sha256').update(region).digest();
  // each checksum word holds 8 digest bytes read big-endian
  for (let i = 0; i < 4; i++) {
    let w = 0n;
    for (let b = 0; b < 8; b++) w = (w << 8n) | BigInt(d[i * 8 + b]!);
    u64le(region, e + 8 + i * 8, w);
  }
}

export function verifyEmbedded(region: Uint8Array, absOffset: number): boolean {
  const e = region.length - ECK_SIZE;
  if (rd64le(region, e) !== ZEC_MAGIC) return false;
  const copy = region.slice();
  sealEmbedded(copy, absOffset);
  for (let i = e; i < region.length; i++) if (copy[i] !== region[i]) return false;
  return true;
}

/** Build one complete label (256 KiB) for the label at absolute offset labelOff. */
export function buildLabel(labelOff: number, packedConfig: Uint8Array, uberblock: Uint8Array, ashift: number): Uint8Array {
  const label = new Uint8Array(VDEV_LABEL_SIZE);
  // an empty, raw boot environment, sealed because loaders verify it
  const be = label.subarray(VDEV_BOOTENV_OFFSET, VDEV_BOOTENV_OFFSET + VDEV_BOOTENV_SIZE);
  sealEmbedded(be, labelOff + VDEV_BOOTENV_OFFSET);
  if (packedConfig.length > VDEV_PHYS_SIZE - ECK_SIZE) throw new Error('label config does not fit');
  const phys = label.subarray(VDEV_PHYS_OFFSET, VDEV_PHYS_OFFSET + VDEV_PHYS_SIZE);
  phys.set(packedConfig, 0);
  sealEmbedded(phys, labelOff + VDEV_PHYS_OFFSET);
  const slot = uberblockSlotSize(ashift);
  for (let s = 0; s < VDEV_UBERBLOCK_RING / slot; s++) {
    const off = VDEV_UBERBLOCK_RING_OFFSET + s * slot;
    const r = label.subarray(off, off + slot);
    r.set(uberblock, 0);
    sealEmbedded(r, labelOff + off);
  }
  return label;
}
