#!/usr/bin/env node
// Builds the WebAssembly LZ4 block compressor behind src/zio/lz4.ts and
// writes it, base64-encoded, to src/zio/lz4-wasm.ts. The WAT below is the
// source of truth; scripts/wasm-asm.mjs turns it into bytes, and a unit test
// re-runs this generator and compares against the committed file.
//
//   node scripts/gen-lz4-wasm.mjs           write src/zio/lz4-wasm.ts
//   node scripts/gen-lz4-wasm.mjs --check   exit 1 if the file is stale
//   node scripts/gen-lz4-wasm.mjs --wat     print the module as WAT
//
// Written from the LZ4 block format description (not from LZ4's code): a
// block is a series of sequences, each a token (high nibble: literal count,
// low nibble: match length - 4; 15 means "more in following bytes, each 255
// adds 255 and continues, anything less ends"), the literals, a 2-byte
// little-endian offset 1..65535 back into the output, and the extra match
// length bytes. The last sequence is literals only. End rules, which the
// strict decoders (LZ4's safe decoder, OpenZFS's copy of it) enforce: the
// last 5 bytes are literals, the last match starts at least 12 bytes before
// the end, and so a block shorter than 13 bytes is literals only.
//
// Kernel contract: export "memory" and
//   lz4_compress(src: i32, n: i32, dst: i32, limit: i32) -> i32
// compresses the n bytes at src into dst and returns the block's length, or
// 0 when that length would exceed `limit` (a block is never empty, so 0 is
// free to mean "does not fit"). The hash table lives at address 0 and takes
// at most LZ4_HASH_TABLE_BYTES; src and dst must lie above it and not overlap, dst
// must have room for LZ4 worst case n + n/255 + 16 plus DST_SLACK bytes
// (literal runs are copied 16 bytes at a time and may spill up to 16 bytes
// past their end), and up to SRC_SLACK bytes past src + n are read (their
// values never reach the output). The table is cleared on every call, so the
// output is a function of the input bytes alone.
//
// Match finding: greedy, one candidate per position from a hash table of the
// 5 bytes at each position (multiplicative hash). The table has one u32
// entry per input byte rounded up to a power of two, 2^MIN_HASH_LOG to
// 2^HASH_LOG entries: clearing a large table would dominate small blocks,
// and the size is a function of n, so still of the input alone. Entries are
// positions relative to src, so an empty entry (0) is simply position 0 and
// gets verified like any other. After a miss the scan advances by
// 1 + misses/64 bytes (so incompressible data is skipped over quickly, and a
// match resets the pace); a found match is first extended backwards over
// pending literals, then forwards 8 bytes at a time.

import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, resolve } from 'node:path';
import { assembleModule, moduleWat, writeOrCheck } from './wasm-asm.mjs';

const OUTPUT = resolve(dirname(fileURLToPath(import.meta.url)), '../src/zio/lz4-wasm.ts');

/**
 * log2 of the hash table's entry count (u32 entries) for inputs of
 * 2^HASH_LOG bytes or more. 14 measured best: 12 (OpenZFS's own choice)
 * loses 2-4% ratio on binaries, 16 gains under 1% and is slower.
 */
export const HASH_LOG = 14;
/** ... and for inputs of at most 2^MIN_HASH_LOG bytes; in between, input size rounded up to a power of 2. */
const MIN_HASH_LOG = 8;
const HT_BYTES = 4 << HASH_LOG;
/** Bytes the kernel may write past the end of its output. */
const DST_SLACK = 16;
/** Bytes the kernel may read past the end of its input. */
const SRC_SLACK = 16;
/** 2^64 / golden ratio (Fibonacci hashing), odd, as a signed i64. */
const HASH_MUL = BigInt.asIntN(64, 0x9e3779b97f4a7c15n);
/** Misses before the scan step grows by one byte. */
const SKIP_LOG = 6;

const MINMATCH = 4;
const LASTLITERALS = 5;
const MFLIMIT = 12;
const MAX_OFFSET = 65535;

// ---------------------------------------------------------------------------
// WAT macros

/**
 * stack: -> the table slot's byte address for position `p`; also sets $seq
 * to the 4 bytes at p (what a candidate must equal). The slot is chosen by
 * the 5 bytes at p: measured, that finds longer matches than hashing the 4
 * a match needs (3-4% smaller output on text, about as fast).
 */
function hashSlot(p) {
  return `
    local.get ${p}
    i32.load align=1
    local.set $seq
    local.get ${p}
    i64.load align=1
    i64.const 24
    i64.shl
    i64.const ${HASH_MUL}
    i64.mul
    i64.const 32
    i64.shr_u
    i32.wrap_i64
    local.get $shift
    i32.shr_u
    i32.const 2
    i32.shl`;
}

/** $var += k */
function bump(v, k) {
  return `
    local.get ${v}
    i32.const ${k}
    i32.add
    local.set ${v}`;
}

/** store the low byte of the stack value at $op, $op++ (stack: value ->) */
const putByte = `
    local.set $b
    local.get $op
    local.get $b
    i32.store8
    ${bump('$op', 1)}`;

/**
 * The extra length bytes for a count that did not fit its nibble: `v` holds
 * count - 15; 255 for every full 255, then the rest.
 */
function lengthBytes(v) {
  return `
    block $lb_done
      loop $lb
        local.get ${v}
        i32.const 255
        i32.lt_u
        br_if $lb_done
        local.get $op
        i32.const 255
        i32.store8
        ${bump('$op', 1)}
        local.get ${v}
        i32.const 255
        i32.sub
        local.set ${v}
        br $lb
      end
    end
    local.get ${v}
    ${putByte}`;
}

/** After a token: the extra length bytes when the count in `v` did not fit its nibble (15 or more). */
function lengthTail(v) {
  return `
    local.get ${v}
    i32.const 15
    i32.ge_u
    if
      local.get ${v}
      i32.const 15
      i32.sub
      local.set $t
      ${lengthBytes('$t')}
    end`;
}

/** stack: -> the token nibble for count `v` (15 if it needs extra bytes) */
function nibble(v) {
  return `
    i32.const 15
    local.get ${v}
    local.get ${v}
    i32.const 15
    i32.ge_u
    select`;
}

const BODY = `
  local.get $dst
  local.tee $op
  local.get $limit
  i32.add
  local.set $oend
  local.get $src
  local.tee $anchor
  local.get $n
  i32.add
  local.set $iend

  block $last
    local.get $n
    i32.const ${MFLIMIT + 1}
    i32.lt_u
    br_if $last
    ;; table entries: about one per input byte, ${1 << MIN_HASH_LOG} to ${1 << HASH_LOG}
    ;; (clearing a big table would dominate small blocks); the hash keeps
    ;; the top 32 - $shift bits
    local.get $n
    i32.const 1
    i32.sub
    i32.clz
    local.tee $shift
    i32.const ${32 - HASH_LOG}
    local.get $shift
    i32.const ${32 - HASH_LOG}
    i32.ge_u
    select
    local.tee $shift
    i32.const ${32 - MIN_HASH_LOG}
    local.get $shift
    i32.const ${32 - MIN_HASH_LOG}
    i32.le_u
    select
    local.set $shift
    ;; a fresh, empty table: every slot says "position 0"
    i32.const 0
    i32.const 0
    i32.const 4
    i32.const 32
    local.get $shift
    i32.sub
    i32.shl
    memory.fill
    ;; a match may start no later than $mflimit and end no later than $mlimit
    local.get $iend
    i32.const ${MFLIMIT}
    i32.sub
    local.set $mflimit
    local.get $iend
    i32.const ${LASTLITERALS}
    i32.sub
    local.tee $mlimit
    i32.const 7
    i32.sub
    local.set $mlimit8
    ;; position 0 is already in every slot; start looking at 1
    local.get $src
    i32.const 1
    i32.add
    local.set $ip

    loop $main
      i32.const ${1 << SKIP_LOG}
      local.set $miss
      ;; ---- find a position whose 4 bytes were seen within 64 KiB ----
      block $found
        loop $search
          local.get $ip
          local.get $mflimit
          i32.gt_u
          br_if $last
          ${hashSlot('$ip')}
          local.tee $h
          i32.load
          local.get $src
          i32.add
          local.set $ref
          local.get $h
          local.get $ip
          local.get $src
          i32.sub
          i32.store
          ;; candidate in reach and really equal? (it is never ahead of ip)
          local.get $ip
          local.get $ref
          i32.sub
          i32.const ${MAX_OFFSET + 1}
          i32.lt_u
          local.get $ref
          i32.load align=1
          local.get $seq
          i32.eq
          i32.and
          br_if $found
          local.get $ip
          local.get $miss
          i32.const ${SKIP_LOG}
          i32.shr_u
          i32.add
          local.set $ip
          ${bump('$miss', 1)}
          br $search
        end
      end

      ;; ---- extend the match backwards over pending literals ----
      block $back_done
        loop $back
          local.get $ip
          local.get $anchor
          i32.le_u
          br_if $back_done
          local.get $ref
          local.get $src
          i32.le_u
          br_if $back_done
          local.get $ip
          i32.const 1
          i32.sub
          i32.load8_u
          local.get $ref
          i32.const 1
          i32.sub
          i32.load8_u
          i32.ne
          br_if $back_done
          ${bump('$ip', -1)}
          ${bump('$ref', -1)}
          br $back
        end
      end

      ;; ---- extend it forwards: $p ends up just past the match ----
      local.get $ip
      i32.const ${MINMATCH}
      i32.add
      local.set $p
      local.get $ref
      i32.const ${MINMATCH}
      i32.add
      local.set $r
      block $fwd_done
        block $differ
          block $tail
            loop $by8
              local.get $p
              local.get $mlimit8
              i32.ge_u
              br_if $tail
              local.get $p
              i64.load align=1
              local.get $r
              i64.load align=1
              i64.xor
              local.tee $x
              i64.const 0
              i64.ne
              br_if $differ
              ${bump('$p', 8)}
              ${bump('$r', 8)}
              br $by8
            end
          end
          loop $by1
            local.get $p
            local.get $mlimit
            i32.ge_u
            br_if $fwd_done
            local.get $p
            i32.load8_u
            local.get $r
            i32.load8_u
            i32.ne
            br_if $fwd_done
            ${bump('$p', 1)}
            ${bump('$r', 1)}
            br $by1
          end
        end
        ;; little-endian: the first differing byte is the lowest set one
        local.get $p
        local.get $x
        i64.ctz
        i32.wrap_i64
        i32.const 3
        i32.shr_u
        i32.add
        local.set $p
      end

      ;; ---- emit the sequence: token, literals, offset, match length ----
      local.get $ip
      local.get $anchor
      i32.sub
      local.set $len
      local.get $p
      local.get $ip
      i32.sub
      i32.const ${MINMATCH}
      i32.sub
      local.set $ml
      ${nibble('$len')}
      i32.const 4
      i32.shl
      ${nibble('$ml')}
      i32.or
      ${putByte}
      ${lengthTail('$len')}
      local.get $len
      i32.const 16
      i32.le_u
      if
        ;; short run: two 8-byte moves, the spill is overwritten below
        local.get $op
        local.get $anchor
        i64.load align=1
        i64.store align=1
        local.get $op
        local.get $anchor
        i64.load offset=8 align=1
        i64.store offset=8 align=1
      else
        local.get $op
        local.get $anchor
        local.get $len
        memory.copy
      end
      local.get $op
      local.get $len
      i32.add
      local.tee $op
      local.get $ip
      local.get $ref
      i32.sub
      i32.store16 align=1
      ${bump('$op', 2)}
      ${lengthTail('$ml')}
      ;; output only grows: past the limit now means past it at the end
      local.get $op
      local.get $oend
      i32.gt_u
      if
        i32.const 0
        return
      end

      local.get $p
      local.tee $ip
      local.set $anchor
      local.get $ip
      local.get $mflimit
      i32.gt_u
      br_if $last
      ;; remember the position 2 back too: cheap, and finds a few more matches
      local.get $ip
      i32.const 2
      i32.sub
      local.set $t
      ${hashSlot('$t')}
      local.get $t
      local.get $src
      i32.sub
      i32.store
      br $main
    end
  end

  ;; ---- the last literals: everything from $anchor to the end ----
  local.get $iend
  local.get $anchor
  i32.sub
  local.set $len
  ;; their cost: token, length bytes if 15 or more, the bytes themselves
  i32.const 0
  local.set $t
  local.get $len
  i32.const 15
  i32.ge_u
  if
    local.get $len
    i32.const 15
    i32.sub
    i32.const 255
    i32.div_u
    i32.const 1
    i32.add
    local.set $t
  end
  local.get $op
  i32.const 1
  i32.add
  local.get $len
  i32.add
  local.get $t
  i32.add
  local.get $oend
  i32.gt_u
  if
    i32.const 0
    return
  end
  ${nibble('$len')}
  i32.const 4
  i32.shl
  ${putByte}
  ${lengthTail('$len')}
  local.get $op
  local.get $anchor
  local.get $len
  memory.copy
  local.get $op
  local.get $len
  i32.add
  local.get $dst
  i32.sub`;

const I32_LOCALS = [
  '$ip', '$anchor', '$ref', '$op', '$oend', '$iend', '$mflimit', '$mlimit', '$mlimit8',
  '$h', '$seq', '$miss', '$p', '$r', '$len', '$ml', '$t', '$b', '$shift',
];

export const MODULE = {
  memory: { name: 'memory', minPages: 1 },
  funcs: [
    {
      name: 'lz4_compress',
      params: [['$src', 'i32'], ['$n', 'i32'], ['$dst', 'i32'], ['$limit', 'i32']],
      results: ['i32'],
      locals: [...I32_LOCALS.map((x) => [x, 'i32']), ['$x', 'i64']],
      body: BODY,
    },
  ],
};

/** The module's bytes, freshly assembled from the WAT above. */
export function buildLz4Module() {
  return assembleModule(MODULE);
}

/** The exact text of src/zio/lz4-wasm.ts. */
export function renderLz4WasmTs() {
  const bytes = buildLz4Module();
  return `// GENERATED by scripts/gen-lz4-wasm.mjs from the WAT kept there; do not edit.
// Regenerate with: node scripts/gen-lz4-wasm.mjs

/** LZ4 block compressor (MVP + bulk memory instructions). ${bytes.length} bytes. */
export const LZ4_WASM_BASE64 =
  '${Buffer.from(bytes).toString('base64')}';

/** The kernel's hash table occupies memory [0, this). */
export const LZ4_HASH_TABLE_BYTES = ${HT_BYTES};

/** Bytes the kernel may write past the end of its output. */
export const LZ4_DST_SLACK = ${DST_SLACK};

/** Bytes the kernel may read past the end of its input. */
export const LZ4_SRC_SLACK = ${SRC_SLACK};
`;
}

function main(argv) {
  if (argv.includes('--wat')) {
    process.stdout.write(moduleWat(MODULE));
    return 0;
  }
  return writeOrCheck(OUTPUT, renderLz4WasmTs(), argv, 'scripts/gen-lz4-wasm.mjs');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
