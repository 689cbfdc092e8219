// The words that make tsmakefs our own reader instead of a build (see
// inspect.ts): kept apart so that main.ts can tell them without loading it.

export const INSPECT_COMMANDS = ['verify', 'ls', 'cat'] as const;
export type InspectCommand = (typeof INSPECT_COMMANDS)[number];

export function isInspectCommand(word: string | undefined): word is InspectCommand {
  return (INSPECT_COMMANDS as readonly string[]).includes(word ?? '');
}
