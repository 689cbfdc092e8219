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

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, resolve } from 'node:path';

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

export const MODULES = {
  scalar: {
    memory: { name: 'memory', minPages: 1 },
    func: { name: 'fletcher4', params: PARAMS, locals: SCALAR_LOCALS, body: SCALAR_BODY },
  },
  simd: {
    memory: { name: 'memory', minPages: 1 },
    func: {
      name: 'fletcher4',
      params: PARAMS,
      locals: [...SCALAR_LOCALS, ...LANES.map((x) => [x, 'v128']), ['$t', 'v128']],
      body: SIMD_BODY,
    },
  },
};

// ---------------------------------------------------------------------------
// The assembler: flat WAT instructions -> binary, for this subset only.

const VALTYPE = { i32: 0x7f, i64: 0x7e, v128: 0x7b };

// name -> [opcode bytes, immediate kind, natural alignment log2 for memargs]
const SIMD = 0xfd;
const OPS = {
  block: [[0x02], 'blocktype'],
  loop: [[0x03], 'blocktype'],
  if: [[0x04], 'blocktype'],
  else: [[0x05]],
  end: [[0x0b]],
  br: [[0x0c], 'u32'],
  br_if: [[0x0d], 'u32'],
  'local.get': [[0x20], 'local'],
  'local.set': [[0x21], 'local'],
  'local.tee': [[0x22], 'local'],
  'i64.load32_u': [[0x35], 'memarg', 2],
  'i64.store': [[0x37], 'memarg', 3],
  'i32.const': [[0x41], 'i32'],
  'i64.const': [[0x42], 'i64'],
  'i32.ge_u': [[0x4f]],
  'i32.lt_u': [[0x49]],
  'i32.add': [[0x6a]],
  'i32.and': [[0x71]],
  'i64.add': [[0x7c]],
  'i64.sub': [[0x7d]],
  'v128.load32x2_u': [[SIMD, ...uleb(6)], 'memarg', 3],
  'v128.const': [[SIMD, ...uleb(12)], 'v128'],
  'i64x2.extract_lane': [[SIMD, ...uleb(29)], 'lane'],
  'i64x2.shl': [[SIMD, ...uleb(203)]],
  'i64x2.add': [[SIMD, ...uleb(206)]],
  'i64x2.sub': [[SIMD, ...uleb(209)]],
  'i64x2.mul': [[SIMD, ...uleb(213)]],
};

function uleb(v) {
  let x = BigInt(v);
  if (x < 0n) throw new RangeError(`uleb of negative ${v}`);
  const out = [];
  do {
    let byte = Number(x & 0x7fn);
    x >>= 7n;
    if (x !== 0n) byte |= 0x80;
    out.push(byte);
  } while (x !== 0n);
  return out;
}

function sleb(v) {
  let x = BigInt(v);
  const out = [];
  for (;;) {
    const byte = Number(x & 0x7fn);
    x >>= 7n; // arithmetic shift on BigInt keeps the sign
    const done = (x === 0n && (byte & 0x40) === 0) || (x === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function name(s) {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

function vec(items) {
  return [...uleb(items.length), ...items.flat()];
}

function section(id, payload) {
  return [id, ...uleb(payload.length), ...payload];
}

function u64le(v) {
  const x = BigInt.asUintN(64, BigInt(v));
  return Array.from({ length: 8 }, (_, i) => Number((x >> BigInt(8 * i)) & 0xffn));
}

/** Encode a flat instruction sequence; locals by $name, branch labels by depth. */
function assembleBody(text, localIndex) {
  const tokens = text
    .split('\n')
    .map((line) => line.replace(/;;.*$/, ''))
    .join(' ')
    .split(/\s+/)
    .filter(Boolean);
  const out = [];
  let depth = 0;
  for (let i = 0; i < tokens.length; ) {
    const op = tokens[i++];
    const def = OPS[op];
    if (!def) throw new Error(`unsupported instruction ${op}`);
    const [code, imm, naturalAlign] = def;
    out.push(...code);
    switch (imm) {
      case undefined:
        break;
      case 'blocktype':
        out.push(0x40); // no params, no results
        depth++;
        break;
      case 'u32':
        out.push(...uleb(Number(tokens[i++])));
        break;
      case 'lane':
        out.push(Number(tokens[i++]));
        break;
      case 'local': {
        const idx = localIndex.get(tokens[i++]);
        if (idx === undefined) throw new Error(`unknown local ${tokens[i - 1]}`);
        out.push(...uleb(idx));
        break;
      }
      case 'i32':
      case 'i64':
        out.push(...sleb(tokens[i++]));
        break;
      case 'v128': {
        if (tokens[i++] !== 'i64x2') throw new Error('v128.const: only the i64x2 shape is supported');
        out.push(...u64le(tokens[i++]), ...u64le(tokens[i++]));
        break;
      }
      case 'memarg': {
        let offset = 0;
        let align = naturalAlign;
        while (i < tokens.length && /^(offset|align)=/.test(tokens[i])) {
          const [k, v] = tokens[i++].split('=');
          if (k === 'offset') offset = Number(v);
          else align = Math.log2(Number(v));
        }
        out.push(...uleb(align), ...uleb(offset));
        break;
      }
      default:
        throw new Error(`bad immediate kind ${imm}`);
    }
    if (op === 'end') depth--;
  }
  if (depth !== 0) throw new Error(`unbalanced block/end (depth ${depth})`);
  out.push(0x0b); // function body end
  return out;
}

function assembleModule({ memory, func }) {
  const localIndex = new Map([...func.params, ...func.locals].map(([n], i) => [n, i]));
  const funcType = [
    0x60,
    ...vec(func.params.map(([, t]) => [VALTYPE[t]])),
    ...vec([]), // no results: the checksum goes to memory
  ];
  // Locals are declared as runs of one type.
  const runs = [];
  for (const [, t] of func.locals) {
    const last = runs[runs.length - 1];
    if (last && last.t === t) last.count++;
    else runs.push({ t, count: 1 });
  }
  const code = [...vec(runs.map(({ t, count }) => [...uleb(count), VALTYPE[t]])), ...assembleBody(func.body, localIndex)];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([funcType])),
    ...section(3, vec([uleb(0)])),
    ...section(5, vec([[0x00, ...uleb(memory.minPages)]])),
    ...section(
      7,
      vec([
        [...name(memory.name), 0x02, ...uleb(0)],
        [...name(func.name), 0x00, ...uleb(0)],
      ]),
    ),
    ...section(10, vec([[...uleb(code.length), ...code]])),
  ];
  return Uint8Array.from(bytes);
}

/** Both modules' bytes, freshly assembled from the WAT above. */
export function buildFletcher4Modules() {
  return { scalar: assembleModule(MODULES.scalar), simd: assembleModule(MODULES.simd) };
}

/** Human-readable WAT of one module (for --wat). */
export function moduleWat({ memory, func }) {
  const params = func.params.map(([n, t]) => `(param ${n} ${t})`).join(' ');
  const locals = func.locals.map(([n, t]) => `    (local ${n} ${t})`).join('\n');
  const body = func.body
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => `    ${l}`)
    .join('\n');
  return `(module\n  (memory (export "${memory.name}") ${memory.minPages})\n  (func (export "${func.name}") ${params}\n${locals}\n${body}\n  )\n)\n`;
}

function b64(bytes) {
  return Buffer.from(bytes).toString('base64');
}

/** The exact text of src/zio/fletcher4-wasm.ts. */
export function renderFletcher4WasmTs() {
  const { scalar, simd } = buildFletcher4Modules();
  return `// GENERATED by scripts/gen-fletcher4-wasm.mjs from the WAT kept there; do not edit.
// Regenerate with: node scripts/gen-fletcher4-wasm.mjs

/** Fletcher-4 kernel using 128-bit SIMD (four interleaved 64-bit lanes). ${simd.length} bytes. */
export const FLETCHER4_SIMD_WASM_BASE64 =
  '${b64(simd)}';

/** Fletcher-4 kernel using only MVP instructions, for hosts without SIMD. ${scalar.length} bytes. */
export const FLETCHER4_SCALAR_WASM_BASE64 =
  '${b64(scalar)}';
`;
}

function main(argv) {
  if (argv.includes('--wat')) {
    for (const [kind, mod] of Object.entries(MODULES)) process.stdout.write(`;; ${kind}\n${moduleWat(mod)}\n`);
    return 0;
  }
  const text = renderFletcher4WasmTs();
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(OUTPUT, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      process.stderr.write(`${OUTPUT} is stale; run node scripts/gen-fletcher4-wasm.mjs\n`);
      return 1;
    }
    return 0;
  }
  writeFileSync(OUTPUT, text);
  process.stdout.write(`wrote ${OUTPUT}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
