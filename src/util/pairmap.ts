// Values kept under two number keys, for the tree's shared objects (times
// by second and nanosecond, a file's mode and owner by uid and mode, then
// gid). Most first keys hold one value, kept as itself, not in a Map of its
// own; one with several holds a Map by the second key. Bounded: cleared
// when full, which only stops later values finding earlier ones.

export class BoundedPairMap<V extends object> {
  private readonly byFirst = new Map<number, V | Map<number, V>>();
  private kept = 0;

  /** `secondOf`: a value's second key (it is kept in the value). */
  constructor(private readonly max: number, private readonly secondOf: (v: V) => number) {}

  get(first: number, second: number): V | undefined {
    const slot = this.byFirst.get(first);
    if (slot instanceof Map) return slot.get(second);
    return slot !== undefined && this.secondOf(slot) === second ? slot : undefined;
  }

  /** Keep `v` under `first` and its second key (none kept there yet); returns it. */
  set(first: number, v: V): V {
    if (this.kept === this.max) {
      this.byFirst.clear();
      this.kept = 0;
    }
    this.kept++;
    const slot = this.byFirst.get(first);
    if (slot === undefined) this.byFirst.set(first, v);
    else if (slot instanceof Map) slot.set(this.secondOf(v), v);
    else this.byFirst.set(first, new Map([[this.secondOf(slot), slot], [this.secondOf(v), v]]));
    return v;
  }
}
