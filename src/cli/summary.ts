// -v output. The writer's summary is an open-ended plain object that grows as
// the writer learns to report more, so it is dumped generically rather than
// field by field: one "key: value" line per leaf, nested keys dotted.

export function formatSummary(summary: object): string {
  const lines: string[] = [];
  const visit = (prefix: string, value: unknown): void => {
    if (value === undefined) return;
    if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
      if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) {
        lines.push(`${prefix}: ${value.map(String).join(', ')}`);
        return;
      }
      for (const [k, v] of Object.entries(value)) visit(prefix === '' ? k : `${prefix}.${k}`, v);
      return;
    }
    lines.push(`${prefix}: ${String(value)}`);
  };
  visit('', summary);
  return lines.map((l) => `${l}\n`).join('');
}
