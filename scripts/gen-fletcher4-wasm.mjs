#!/usr/bin/env node
// Builds the two WebAssembly kernels behind src/zio/fletcher4.ts and writes
// them, base64-encoded, to src/zio/fletcher4-wasm.ts.
//
// No WebAssembly toolchain is available to the build, so the kernels are
// written below in the flat (non-folded) WAT instruction syntax and this file
// carries a tiny assembler for exactly the subset they use. The WAT strings
// are the source of truth: the bytes are derived from them every time, and a
// unit test re-runs this generator and compares against the committed file.
//
//   node scripts/gen-fletcher4-wasm.mjs           write src/zio/fletcher4-wasm.ts
//   node scripts/gen-fletcher4-wasm.mjs --check   exit 1 if the file is stale
//   node scripts/gen-fletcher4-wasm.mjs --wat     print both modules as WAT
//
// Kernel contract (both modules): export "memory" and
//   fletcher4(p: i32, n: i32, out: i32)
// which checksums n bytes (n a multiple of 4) at p as little-endian 32-bit
// words and stores a, b, c, d as little-endian u64 at out..out+31. All
// address arithmetic is unsigned so n may use the full 32 bits.
//
// Why two modules: the fast one needs the SIMD proposal; a host that rejects
// it must still load something, and a module is validated as a whole.

import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, resolve } from 'node:path';
import { assembleModule, moduleWat, writeOrCheck } from './wasm-asm.mjs';

const OUTPUT = resolve(dirname(fileURLToPath(import.meta.url)), '../src/zio/fletcher4-wasm.ts');

// ---------------------------------------------------------------------------
// The kernels, in WAT.

const ACC = ['$a', '$b', '$c', '$d'];

/** One word of the defining recurrence: a += w; b += a; c += b; d += c. */
function scalarWord(offset) {
  return `
    local.get $a
    local.get $p
    i64.load32_u offset=${offset}
    i64.add
    local.tee $a
    local.get $b
    i64.add
    local.tee $b
    local.get $c
    i64.add
    local.tee $c
    local.get $d
    i64.add
    local.set $d`;
}

/**
 * Store a..d at $out, then return. Shared by both kernels.
 * The 0..3 words left after the 16-byte stride run through the plain
 * recurrence, continuing from whatever state the bulk loop produced.
 */
const scalarTailAndStore = `
  ;; 0..3 trailing words: $p already points past the 16-byte multiple
  local.get $p
  local.get $n
  i32.const 12
  i32.and
  i32.add
  local.set $end
  block
    local.get $p
    local.get $end
    i32.ge_u
    br_if 0
    loop
      ${scalarWord(0)}
      local.get $p
      i32.const 4
      i32.add
      local.tee $p
      local.get $end
      i32.lt_u
      br_if 0
    end
  end
  ${ACC.map(
    (acc, i) => `
  local.get $out
  local.get ${acc}
  i64.store offset=${i * 8}`,
  ).join('')}`;

const SCALAR_BODY = `
  ;; 16 bytes (4 words) per trip; the recurrence is serial, so unrolling only
  ;; saves loop overhead, the four chains still advance one add per word
  local.get $p
  local.get $n
  i32.const -16
  i32.and
  i32.add
  local.set $end
  block
    local.get $p
    local.get $end
    i32.ge_u
    br_if 0
    loop
      ${scalarWord(0)}
      ${scalarWord(4)}
      ${scalarWord(8)}
      ${scalarWord(12)}
      local.get $p
      i32.const 16
      i32.add
      local.tee $p
      local.get $end
      i32.lt_u
      br_if 0
    end
  end
  ${scalarTailAndStore}`;

// The SIMD kernel splits the word stream into four interleaved lanes
// (lane j takes words j, j+4, j+8, ...) and runs the recurrence on each lane
// independently: lanes 0,1 live in the $?01 vectors, lanes 2,3 in $?23. With
// n steps per lane (N = 4n words) and m = n - k counting steps from the end,
// word 4k+j sits r = 4m - j positions from the end of the whole stream, and
// the full checksum weights it by r, C(r+1,2), C(r+2,3) for b, c, d. Writing
// those weights in the per-lane basis {1, m, C(m+1,2), C(m+2,3)} (which is
// what the lane accumulators A, B, C, D hold) gives:
//   a = sum A_j
//   b = sum 4 B_j - j A_j
//   c = sum 16 C_j - (6 + 4j) B_j + C(j,2) A_j
//   d = sum 64 D_j - (48 + 16j) C_j + (2j^2 + 4j + 4) B_j - C(j,3) A_j
// All coefficients are integers, so the identities hold mod 2^64 too.

/** One step of lanes `l` ('01' or '23') on the two words at $p+offset. */
function laneStep(offset, l) {
  return `
    local.get $A${l}
    local.get $p
    v128.load32x2_u offset=${offset}
    i64x2.add
    local.tee $A${l}
    local.get $B${l}
    i64x2.add
    local.tee $B${l}
    local.get $C${l}
    i64x2.add
    local.tee $C${l}
    local.get $D${l}
    i64x2.add
    local.set $D${l}`;
}

/** vector on the stack -> lane0 + lane1 into `dst`. */
function horizontalSum(dst) {
  return `
  local.tee $t
  i64x2.extract_lane 0
  local.get $t
  i64x2.extract_lane 1
  i64.add
  local.set ${dst}`;
}

/** stack: v -> v +/- src * (k0, k1) */
function mulAcc(op, src, k0, k1) {
  return `
  local.get ${src}
  v128.const i64x2 ${k0} ${k1}
  i64x2.mul
  i64x2.${op}`;
}

const SIMD_BODY = `
  ;; 32 bytes per trip: two steps of all four lanes
  local.get $p
  local.get $n
  i32.const -32
  i32.and
  i32.add
  local.set $end
  block
    local.get $p
    local.get $end
    i32.ge_u
    br_if 0
    loop
      ${laneStep(0, '01')}
      ${laneStep(8, '23')}
      ${laneStep(16, '01')}
      ${laneStep(24, '23')}
      local.get $p
      i32.const 32
      i32.add
      local.tee $p
      local.get $end
      i32.lt_u
      br_if 0
    end
  end
  ;; a lone 16-byte group is one more step of every lane
  local.get $n
  i32.const 16
  i32.and
  if
    ${laneStep(0, '01')}
    ${laneStep(8, '23')}
    local.get $p
    i32.const 16
    i32.add
    local.set $p
  end
  ;; fold the lanes back into one checksum (see the derivation above)
  local.get $A01
  local.get $A23
  i64x2.add
  ${horizontalSum('$a')}

  local.get $B01
  local.get $B23
  i64x2.add
  i32.const 2
  i64x2.shl
  ${mulAcc('sub', '$A01', 0, 1)}
  ${mulAcc('sub', '$A23', 2, 3)}
  ${horizontalSum('$b')}

  local.get $C01
  local.get $C23
  i64x2.add
  i32.const 4
  i64x2.shl
  ${mulAcc('sub', '$B01', 6, 10)}
  ${mulAcc('sub', '$B23', 14, 18)}
  ${mulAcc('add', '$A23', 1, 3)}
  ${horizontalSum('$c')}

  local.get $D01
  local.get $D23
  i64x2.add
  i32.const 6
  i64x2.shl
  ${mulAcc('sub', '$C01', 48, 64)}
  ${mulAcc('sub', '$C23', 80, 96)}
  ${mulAcc('add', '$B01', 4, 10)}
  ${mulAcc('add', '$B23', 20, 34)}
  ${mulAcc('sub', '$A23', 0, 1)}
  ${horizontalSum('$d')}
  ${scalarTailAndStore}`;

const PARAMS = [
  ['$p', 'i32'],
  ['$n', 'i32'],
  ['$out', 'i32'],
];
const SCALAR_LOCALS = [['$end', 'i32'], ...ACC.map((x) => [x, 'i64'])];
const LANES = ['A', 'B', 'C', 'D'].flatMap((q) => [`$${q}01`, `$${q}23`]);

const SCALAR_FUNC = { name: 'fletcher4', params: PARAMS, locals: SCALAR_LOCALS, body: SCALAR_BODY };
const SIMD_FUNC = {
  name: 'fletcher4',
  params: PARAMS,
  locals: [...SCALAR_LOCALS, ...LANES.map((x) => [x, 'v128']), ['$t', 'v128']],
  body: SIMD_BODY,
};
// The same kernels on a memory they are given: a shared WebAssembly.Memory
// that another thread fills (the file reader's ring), so blocks there are
// checksummed where they lie. Up to 65536 pages (4 GiB), any actual size.
const SHARED_MEMORY = { name: 'memory', import: ['env', 'memory'], minPages: 1, maxPages: 65536 };

export const MODULES = {
  scalar: { memory: { name: 'memory', minPages: 1 }, func: SCALAR_FUNC },
  simd: { memory: { name: 'memory', minPages: 1 }, func: SIMD_FUNC },
  scalarShared: { memory: SHARED_MEMORY, func: SCALAR_FUNC },
  simdShared: { memory: SHARED_MEMORY, func: SIMD_FUNC },
};

// ---------------------------------------------------------------------------
// The assembler: flat WAT instructions -> binary, for this subset only.

// The assembler is shared with the LZ4 kernel: scripts/wasm-asm.mjs.

export function buildFletcher4Modules() {
  return Object.fromEntries(Object.entries(MODULES).map(([k, m]) => [k, assembleModule(m)]));
}

/** Human-readable WAT of one module (for --wat). */
export { moduleWat };

function b64(bytes) {
  return Buffer.from(bytes).toString('base64');
}

/** The exact text of src/zio/fletcher4-wasm.ts. */
export function renderFletcher4WasmTs() {
  const { scalar, simd, scalarShared, simdShared } = buildFletcher4Modules();
  return `// GENERATED by scripts/gen-fletcher4-wasm.mjs from the WAT kept there; do not edit.
// Regenerate with: node scripts/gen-fletcher4-wasm.mjs

/** Fletcher-4 kernel using 128-bit SIMD (four interleaved 64-bit lanes). ${simd.length} bytes. */
export const FLETCHER4_SIMD_WASM_BASE64 =
  '${b64(simd)}';

/** Fletcher-4 kernel using only MVP instructions, for hosts without SIMD. ${scalar.length} bytes. */
export const FLETCHER4_SCALAR_WASM_BASE64 =
  '${b64(scalar)}';

/** The SIMD kernel on an imported shared memory ("env" "memory"). ${simdShared.length} bytes. */
export const FLETCHER4_SIMD_SHARED_WASM_BASE64 =
  '${b64(simdShared)}';

/** The MVP kernel on an imported shared memory ("env" "memory"). ${scalarShared.length} bytes. */
export const FLETCHER4_SCALAR_SHARED_WASM_BASE64 =
  '${b64(scalarShared)}';
`;
}

function main(argv) {
  if (argv.includes('--wat')) {
    for (const [kind, mod] of Object.entries(MODULES)) process.stdout.write(`;; ${kind}\n${moduleWat(mod)}\n`);
    return 0;
  }
  return writeOrCheck(OUTPUT, renderFletcher4WasmTs(), argv, 'scripts/gen-fletcher4-wasm.mjs');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
