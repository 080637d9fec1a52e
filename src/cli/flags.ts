/**
 * The command line's one flag parser and help generator. Each command declares its flags once
 * (name, kind, range, help); from that declaration come `vgic CMD --help`, the parse (node:util's
 * strict parseArgs: an unknown flag is an error), and the checks of every value (a whole number in
 * its range, a number, a size, one of a few words, a list): a bad value is a `UsageError` with one
 * line saying what the flag takes, which main.ts prints on stderr with exit status 2. A command
 * added later (or a flag) is one more entry in its table.
 *
 * Who may call: src/cli/ (Node only).
 */

import { parseArgs } from 'node:util';

/** A misuse of the command line: main.ts prints the message on one line and exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type FlagValue = string | number | boolean | readonly string[] | readonly number[];

export interface FlagSpec {
  /** The long name, without dashes. */
  readonly name: string;
  readonly short?: string;
  /**
   * int: a whole number in min..max; number: a finite decimal in min..max; size: bytes as 128M,
   * 64K, 1G (a bare number is bytes); string; choice: one of `choices`; list: comma-separated
   * words (checked against `choices` if given); ints: comma-separated whole numbers in min..max;
   * boolean: present or not.
   */
  readonly kind: 'int' | 'number' | 'size' | 'string' | 'choice' | 'list' | 'ints' | 'boolean';
  /** The value's name in the help (N, FILE, SIZE...). */
  readonly arg?: string;
  readonly help: string;
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
  /** What a list's item is, for its error message ('test': "unknown test 'x' (tests: ...)"). */
  readonly item?: string;
  readonly default?: FlagValue;
}

export interface CommandSpec {
  readonly name: string;
  /** After the name in the usage line: positional arguments, e.g. 'IMAGE'. */
  readonly args?: string;
  /** What the command does (wrapped lines). */
  readonly summary: string;
  readonly flags: readonly FlagSpec[];
}

const INDENT = 23;

function flagLabel(f: FlagSpec): string {
  const value = f.kind === 'boolean' ? '' : ` ${f.arg ?? 'N'}`;
  return `${f.short !== undefined ? `-${f.short}, ` : ''}--${f.name}${value}`;
}

/** The command's block in `vgic --help` and `vgic CMD --help`: name, summary, one line per flag. */
export function commandHelp(c: CommandSpec): string {
  const head = `  ${c.name}${c.args !== undefined ? ` ${c.args}` : ''}`;
  const [first, ...rest] = c.summary.split('\n');
  const lines = [
    head.length < INDENT - 1 ? `${head.padEnd(INDENT)}${first}` : `${head}\n${' '.repeat(INDENT)}${first}`,
  ];
  for (const l of rest) lines.push(`${' '.repeat(INDENT)}${l}`);
  for (const f of c.flags) {
    const label = `      ${flagLabel(f)}`;
    const bounds =
      (f.kind === 'int' || f.kind === 'ints' || f.kind === 'number') && f.max !== undefined
        ? `${f.min ?? 0}..${f.max}`
        : '';
    const dflt = f.default !== undefined && f.kind !== 'boolean' ? `default ${String(f.default)}` : '';
    const note = bounds || dflt ? ` (${[bounds, dflt].filter((x) => x).join('; ')})` : '';
    const [h0, ...hs] = `${f.help}${note}`.split('\n');
    lines.push(
      label.length < INDENT - 1 ? `${label.padEnd(INDENT)}${h0}` : `${label}\n${' '.repeat(INDENT)}${h0}`,
    );
    for (const l of hs) lines.push(`${' '.repeat(INDENT)}${l}`);
  }
  return lines.join('\n');
}

function sizeValue(f: FlagSpec, v: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(v);
  if (!m) throw new UsageError(`--${f.name} takes a size like 128M, 64K or 1G, got '${v}'`);
  const mul = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mul;
}

function range(f: FlagSpec): string {
  const min = f.min ?? 0;
  return f.max !== undefined ? `${min}..${f.max}` : `>= ${min}`;
}

function intValue(f: FlagSpec, v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < (f.min ?? 0) || (f.max !== undefined && n > f.max))
    throw new UsageError(`--${f.name} takes a whole number ${range(f)}, got '${v}'`);
  return n;
}

function checkValue(f: FlagSpec, v: string): FlagValue {
  switch (f.kind) {
    case 'int':
      return intValue(f, v);
    case 'number': {
      const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isFinite(n) || n < (f.min ?? 0) || (f.max !== undefined && n > f.max))
        throw new UsageError(`--${f.name} takes a number ${range(f)}, got '${v}'`);
      return n;
    }
    case 'size':
      return sizeValue(f, v);
    case 'choice':
      if (!f.choices?.includes(v))
        throw new UsageError(`--${f.name} takes one of ${f.choices?.join(', ')}, got '${v}'`);
      return v;
    case 'list': {
      const items = v.split(',').map((x) => x.trim());
      for (const x of items) {
        if (x === '') throw new UsageError(`--${f.name} takes a comma-separated list, got '${v}'`);
        if (f.choices !== undefined && !f.choices.includes(x))
          throw new UsageError(
            `--${f.name}: unknown ${f.item ?? 'name'} '${x}' (${f.item ?? 'name'}s: ${f.choices.join(', ')})`,
          );
      }
      return items;
    }
    case 'ints':
      return v.split(',').map((x) => intValue(f, x.trim()));
    default:
      return v;
  }
}

export interface Parsed {
  /** Every flag by long name: its checked value, or its default (undefined if none). */
  readonly values: Readonly<Record<string, FlagValue | undefined>>;
  /** The flags the user gave, by long name (for the options a --json result records). */
  readonly given: Readonly<Record<string, FlagValue>>;
  readonly positionals: readonly string[];
}

/**
 * Parses a command's arguments against its spec: unknown flags, a value missing or given to a
 * boolean, a bad value, or positionals it does not take throw a UsageError.
 */
export function parseCommand(c: CommandSpec, argv: readonly string[], positionals = 0): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const f of c.flags)
    options[f.name] = {
      type: f.kind === 'boolean' ? 'boolean' : 'string',
      ...(f.short !== undefined ? { short: f.short } : {}),
    };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: positionals > 0 });
  } catch (e) {
    // node:util's messages name the flag; add where the list of flags is.
    throw new UsageError(`${c.name}: ${(e as Error).message.split('\n')[0]} (see vgic ${c.name} --help)`);
  }
  if (parsed.positionals.length > positionals)
    throw new UsageError(
      `${c.name} takes ${positionals === 0 ? 'no arguments' : `${positionals} argument(s)`}, got '${parsed.positionals.join(' ')}'`,
    );
  const values: Record<string, FlagValue | undefined> = {};
  const given: Record<string, FlagValue> = {};
  for (const f of c.flags) {
    const raw = (parsed.values as Record<string, string | boolean | undefined>)[f.name];
    if (raw === undefined) {
      // A default written as the user would write it (a size: '128M') is checked like a value.
      values[f.name] =
        f.kind === 'boolean'
          ? false
          : typeof f.default === 'string' && f.kind !== 'string' && f.kind !== 'choice'
            ? checkValue(f, f.default)
            : f.default;
      continue;
    }
    const v = typeof raw === 'boolean' ? raw : checkValue(f, raw);
    values[f.name] = v;
    given[f.name] = v;
  }
  return { values, given, positionals: parsed.positionals };
}
