import { readFileSync, writeFileSync } from 'node:fs';
// A tiny assembler from flat (non-folded) WAT instruction text to WebAssembly
// module bytes, for the hand-written kernels in scripts/gen-*-wasm.mjs. No
// WebAssembly toolchain is available to the build; the kernels are small
// enough that their WAT, kept in the generator scripts, can be the source of
// truth and the bytes derived from it every time.
//
// Supported: one memory (exported; or imported, shared, and exported again), any number of functions (each may be
// exported), params and at most one result per function, locals by $name,
// structured control (block/loop/if/else/end, void block types only) with
// branch targets given either as a depth or as a $label named on the
// block/loop/if that opens it, and the instructions listed in OPS (integer
// MVP, bulk memory fill/copy, and the few SIMD ones the fletcher4 kernel
// uses). Anything else is an error, never silently dropped.
//
// For a single function without a result this produces exactly the bytes of
// the assembler that scripts/gen-fletcher4-wasm.mjs carries inline (same
// section layout and order), so that script can switch to this one without
// changing its output.

const VALTYPE = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b };

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

// name -> [opcode bytes, immediate kind, natural alignment log2 for memargs]
const SIMD = 0xfd;
const MISC = 0xfc;
const OPS = {
  unreachable: [[0x00]],
  nop: [[0x01]],
  block: [[0x02], 'blocktype'],
  loop: [[0x03], 'blocktype'],
  if: [[0x04], 'blocktype'],
  else: [[0x05]],
  end: [[0x0b]],
  br: [[0x0c], 'label'],
  br_if: [[0x0d], 'label'],
  return: [[0x0f]],
  call: [[0x10], 'func'],
  drop: [[0x1a]],
  select: [[0x1b]],

  'local.get': [[0x20], 'local'],
  'local.set': [[0x21], 'local'],
  'local.tee': [[0x22], 'local'],

  'i32.load': [[0x28], 'memarg', 2],
  'i64.load': [[0x29], 'memarg', 3],
  'i32.load8_s': [[0x2c], 'memarg', 0],
  'i32.load8_u': [[0x2d], 'memarg', 0],
  'i32.load16_s': [[0x2e], 'memarg', 1],
  'i32.load16_u': [[0x2f], 'memarg', 1],
  'i64.load8_u': [[0x31], 'memarg', 0],
  'i64.load16_u': [[0x33], 'memarg', 1],
  'i64.load32_u': [[0x35], 'memarg', 2],
  'i32.store': [[0x36], 'memarg', 2],
  'i64.store': [[0x37], 'memarg', 3],
  'i32.store8': [[0x3a], 'memarg', 0],
  'i32.store16': [[0x3b], 'memarg', 1],
  'i64.store8': [[0x3c], 'memarg', 0],
  'i64.store16': [[0x3d], 'memarg', 1],
  'i64.store32': [[0x3e], 'memarg', 2],
  'memory.size': [[0x3f, 0x00]],
  'memory.grow': [[0x40, 0x00]],
  'memory.copy': [[MISC, ...uleb(10), 0x00, 0x00]],
  'memory.fill': [[MISC, ...uleb(11), 0x00]],

  'i32.const': [[0x41], 'i32'],
  'i64.const': [[0x42], 'i64'],

  'i32.eqz': [[0x45]],
  'i32.eq': [[0x46]],
  'i32.ne': [[0x47]],
  'i32.lt_s': [[0x48]],
  'i32.lt_u': [[0x49]],
  'i32.gt_s': [[0x4a]],
  'i32.gt_u': [[0x4b]],
  'i32.le_s': [[0x4c]],
  'i32.le_u': [[0x4d]],
  'i32.ge_s': [[0x4e]],
  'i32.ge_u': [[0x4f]],
  'i64.eqz': [[0x50]],
  'i64.eq': [[0x51]],
  'i64.ne': [[0x52]],
  'i64.lt_u': [[0x54]],
  'i64.gt_u': [[0x56]],
  'i64.le_u': [[0x58]],
  'i64.ge_u': [[0x5a]],

  'i32.clz': [[0x67]],
  'i32.ctz': [[0x68]],
  'i32.add': [[0x6a]],
  'i32.sub': [[0x6b]],
  'i32.mul': [[0x6c]],
  'i32.div_u': [[0x6e]],
  'i32.rem_u': [[0x70]],
  'i32.and': [[0x71]],
  'i32.or': [[0x72]],
  'i32.xor': [[0x73]],
  'i32.shl': [[0x74]],
  'i32.shr_s': [[0x75]],
  'i32.shr_u': [[0x76]],
  'i32.rotl': [[0x77]],
  'i32.rotr': [[0x78]],
  'i64.clz': [[0x79]],
  'i64.ctz': [[0x7a]],
  'i64.add': [[0x7c]],
  'i64.sub': [[0x7d]],
  'i64.mul': [[0x7e]],
  'i64.and': [[0x83]],
  'i64.or': [[0x84]],
  'i64.xor': [[0x85]],
  'i64.shl': [[0x86]],
  'i64.shr_u': [[0x88]],
  'i64.rotl': [[0x89]],
  'i32.wrap_i64': [[0xa7]],
  'i64.extend_i32_u': [[0xad]],

  'v128.load': [[SIMD, ...uleb(0)], 'memarg', 4],
  'v128.load32x2_u': [[SIMD, ...uleb(6)], 'memarg', 3],
  'v128.store': [[SIMD, ...uleb(11)], 'memarg', 4],
  'v128.const': [[SIMD, ...uleb(12)], 'v128'],
  'i64x2.extract_lane': [[SIMD, ...uleb(29)], 'lane'],
  'i64x2.shl': [[SIMD, ...uleb(203)]],
  'i64x2.add': [[SIMD, ...uleb(206)]],
  'i64x2.sub': [[SIMD, ...uleb(209)]],
  'i64x2.mul': [[SIMD, ...uleb(213)]],
};

/** Opcode names this assembler knows (for tests and error messages). */
export const SUPPORTED_OPS = Object.freeze(Object.keys(OPS));

/** Split WAT text into tokens, dropping `;;` comments. */
function tokenize(text) {
  return text
    .split('\n')
    .map((line) => line.replace(/;;.*$/, ''))
    .join(' ')
    .split(/\s+/)
    .filter(Boolean);
}

/**
 * Encode a flat instruction sequence. Locals are referenced by $name, branch
 * targets by depth or by the $label of an enclosing block/loop/if, calls by
 * function $name.
 */
export function assembleBody(text, localIndex, funcIndex = new Map()) {
  const tokens = tokenize(text);
  const out = [];
  /** Labels of the open blocks, innermost last (null for unnamed ones). */
  const labels = [];
  for (let i = 0; i < tokens.length; ) {
    const op = tokens[i++];
    const def = OPS[op];
    if (!def) throw new Error(`unsupported instruction ${op}`);
    const [code, imm, naturalAlign] = def;
    out.push(...code);
    switch (imm) {
      case undefined:
        break;
      case 'blocktype': {
        let label = null;
        if (i < tokens.length && tokens[i].startsWith('$')) label = tokens[i++];
        out.push(0x40); // no params, no results
        labels.push(label);
        break;
      }
      case 'label': {
        const t = tokens[i++];
        let depth;
        if (t !== undefined && t.startsWith('$')) {
          const at = labels.lastIndexOf(t);
          if (at < 0) throw new Error(`${op} to unknown or closed label ${t}`);
          depth = labels.length - 1 - at;
        } else {
          depth = Number(t);
          if (!Number.isInteger(depth) || depth < 0) throw new Error(`${op}: bad depth ${t}`);
        }
        out.push(...uleb(depth));
        break;
      }
      case 'func': {
        const idx = funcIndex.get(tokens[i++]);
        if (idx === undefined) throw new Error(`call to unknown function ${tokens[i - 1]}`);
        out.push(...uleb(idx));
        break;
      }
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
        if (!Number.isInteger(align) || align > naturalAlign) throw new Error(`${op}: bad alignment`);
        out.push(...uleb(align), ...uleb(offset));
        break;
      }
      default:
        throw new Error(`bad immediate kind ${imm}`);
    }
    if (op === 'end') {
      if (labels.length === 0) throw new Error('end without an open block');
      labels.pop();
    }
  }
  if (labels.length !== 0) throw new Error(`unbalanced block/end (depth ${labels.length})`);
  out.push(0x0b); // function body end
  return out;
}

function funcType(func) {
  const results = func.results ?? [];
  if (results.length > 1) throw new Error(`${func.name}: at most one result`);
  return [0x60, ...vec(func.params.map(([, t]) => [VALTYPE[t]])), ...vec(results.map((t) => [VALTYPE[t]]))];
}

/**
 * Module bytes. `spec` is { memory: { name, minPages }, funcs: [...] } or,
 * the shape gen-fletcher4-wasm.mjs uses, { memory, func }. Each function is
 * { name, params: [[$n, type]...], results?: [type], locals: [[$n, type]...],
 * body: WAT text, export?: boolean (default true) }.
 */
export function assembleModule(spec) {
  const { memory } = spec;
  const funcs = spec.funcs ?? [spec.func];
  const funcIndex = new Map(funcs.map((f, i) => [`$${f.name}`, i]));

  // One type entry per distinct signature, in order of first use.
  const types = [];
  const typeKeys = [];
  const typeOf = funcs.map((f) => {
    const t = funcType(f);
    const key = t.join(',');
    let at = typeKeys.indexOf(key);
    if (at < 0) {
      at = typeKeys.length;
      typeKeys.push(key);
      types.push(t);
    }
    return at;
  });

  const bodies = funcs.map((func) => {
    const localIndex = new Map([...func.params, ...func.locals].map(([n], i) => [n, i]));
    if (localIndex.size !== func.params.length + func.locals.length) throw new Error(`${func.name}: duplicate local`);
    // Locals are declared as runs of one type.
    const runs = [];
    for (const [, t] of func.locals) {
      const last = runs[runs.length - 1];
      if (last && last.t === t) last.count++;
      else runs.push({ t, count: 1 });
    }
    const code = [
      ...vec(runs.map(({ t, count }) => [...uleb(count), VALTYPE[t]])),
      ...assembleBody(func.body, localIndex, funcIndex),
    ];
    return [...uleb(code.length), ...code];
  });

  const exports = [[...name(memory.name), 0x02, ...uleb(0)]];
  funcs.forEach((f, i) => {
    if (f.export !== false) exports.push([...name(f.name), 0x00, ...uleb(i)]);
  });

  // An imported memory (memory.import = [module, field]) is shared and
  // bounded (limits flag 3), and is exported again under memory.name, so
  // callers see the same exports either way.
  const imported = memory.import !== undefined;
  const limits = imported ? [0x03, ...uleb(memory.minPages), ...uleb(memory.maxPages)] : [0x00, ...uleb(memory.minPages)];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...(imported ? section(2, vec([[...name(memory.import[0]), ...name(memory.import[1]), 0x02, ...limits]])) : []),
    ...section(3, vec(typeOf.map((t) => uleb(t)))),
    ...(imported ? [] : section(5, vec([limits]))),
    ...section(7, vec(exports)),
    ...section(10, vec(bodies)),
  ];
  return Uint8Array.from(bytes);
}

/** Human-readable WAT of one module (for the generators' --wat). */
export function moduleWat(spec) {
  const { memory } = spec;
  const funcs = spec.funcs ?? [spec.func];
  const parts = funcs.map((func) => {
    const params = func.params.map(([n, t]) => `(param ${n} ${t})`).join(' ');
    const results = (func.results ?? []).map((t) => ` (result ${t})`).join('');
    const exp = func.export !== false ? ` (export "${func.name}")` : '';
    const locals = func.locals.map(([n, t]) => `    (local ${n} ${t})`).join('\n');
    let depth = 0;
    const body = tokenizeLines(func.body)
      .map((l) => {
        if (/^(end|else)\b/.test(l)) depth--;
        const s = `    ${'  '.repeat(Math.max(depth, 0))}${l}`;
        if (/^(block|loop|if|else)\b/.test(l)) depth++;
        return s;
      })
      .join('\n');
    return `  (func $${func.name}${exp} ${params}${results}\n${locals}\n${body}\n  )`;
  });
  const mem = memory.import !== undefined
    ? `(import "${memory.import[0]}" "${memory.import[1]}" (memory ${memory.minPages} ${memory.maxPages} shared))\n  (export "${memory.name}" (memory 0))`
    : `(memory (export "${memory.name}") ${memory.minPages})`;
  return `(module\n  ${mem}\n${parts.join('\n')}\n)\n`;
}

function tokenizeLines(text) {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/**
 * Write a generated source file, or with --check exit status 1 if the
 * committed one differs (so the committed bytes cannot drift from the
 * generator). Returns the process exit status.
 */
export function writeOrCheck(output, text, argv, script) {
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(output, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      process.stderr.write(`${output} is stale; run node ${script}\n`);
      return 1;
    }
    return 0;
  }
  writeFileSync(output, text);
  process.stdout.write(`wrote ${output}\n`);
  return 0;
}
