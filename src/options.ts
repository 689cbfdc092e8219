// Options of one image build, as the CLI (and the library API) hands them to
// the writer. Sizes are in bytes.

export interface ImageOptions {
  /** Output image path. */
  image: string;
  poolName: string;
  /** Mountpoint prefix; default `/${poolName}`. */
  rootPath: string;
  /** log2 of the allocation unit, 9..16. */
  ashift: number;
  /** Exact image size in bytes (`-s`); undefined: the smallest that fits plus freePercent. */
  size?: number;
  /** Free space to leave in an auto-sized image, percent of the used space (default 10). */
  freePercent?: number;
  /** Bounds from -M/-m; size must lie within them. */
  minSize?: number;
  maxSize?: number;
  /** Metaslab size (power of two) or undefined for the heuristic. */
  msSize?: number;
  /** Explicit pool GUID, else derived from the seed. */
  poolGuid?: bigint;
  /** Claim uberblock txg = birth txg, so OpenZFS verifies all metadata on import. */
  verifyTxgs: boolean;
  /** vdev path recorded in the label. */
  vdevPath: string;
  /** Seed text for every GUID and ZAP salt (reproducible output). */
  seed: string;
  /** `-o fs=` specs (makefs syntax) in order; those a preset expanded to are marked. */
  datasets: { spec: string; fromPreset: boolean }[];
  /** Feature set, as `zpool create -o compatibility=` names it ('legacy': none). */
  compatibility: string;
  /** Store xattrs from the input (xattr=sa); false drops them. */
  xattrs: boolean;
  /** Dataset to boot from (pool property bootfs). */
  bootfs?: string;
  /** Compression worker threads (0: compress on the main thread); the image does not depend on it. */
  workers?: number;
  /** Called with progress counters while the image is written (at most every 100 ms). */
  onProgress?: (p: import('./image.js').Progress) => void;
  /** Print what was done (datasets, objects, bytes, space used). */
  verbose: boolean;
}
