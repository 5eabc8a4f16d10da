// Printing results: plain aligned tables for the terminal, Markdown for the README, and the
// header (date, machine, node, command) that makes a table reproducible.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';

export function machineInfo(): { date: string; nproc: number; cpu: string; node: string; command: string } {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'));
    if (m) cpu = m[1]!.trim();
  } catch {
    /* not Linux: os.cpus() model is fine */
  }
  const script = path.relative(process.cwd(), process.argv[1] ?? '');
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: cpus().length,
    cpu,
    node: process.version,
    command: ['node', script, ...process.argv.slice(2)].join(' '),
  };
}

export function headerLines(markdown: boolean): string[] {
  const m = machineInfo();
  const lines = [`date: ${m.date}`, `machine: ${m.nproc} cores, ${m.cpu}`, `node: ${m.node}`, `command: ${m.command}`];
  return markdown ? lines.map((l) => `- ${l.replace(/^(\w+):/, '**$1**:')}`) : lines;
}

/** A table as rows of cells; the first row is the header. */
export function renderTable(rows: readonly (readonly string[])[], markdown: boolean): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  if (markdown) {
    const line = (r: readonly string[]): string => '| ' + r.map((cell) => cell.replace(/\|/g, '\\|')).join(' | ') + ' |';
    return [line(rows[0]!), '|' + rows[0]!.map((_, c) => (c === 0 ? ':--' : '--:')).join('|') + '|', ...rows.slice(1).map(line)].join('\n');
  }
  const line = (r: readonly string[]): string => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function fmtRate(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  if (x >= 100_000) return `${(x / 1000).toFixed(0)}k`;
  if (x >= 10_000) return `${(x / 1000).toFixed(1)}k`;
  return x.toFixed(0);
}

export function fmtMs(micros: number): string {
  if (!Number.isFinite(micros)) return '?';
  if (micros === 0) return '<1'; // autocannon's histogram has whole milliseconds
  const ms = micros / 1000;
  return ms >= 10 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(1) : ms.toFixed(2);
}

export function fmtMB(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / (1 << 20)).toFixed(0)}MB` : '?';
}

export function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a';
}

/** Writes results under .bench-out/ (git-ignored); returns the path. */
export function writeJson(name: string, data: unknown): string {
  const dir = path.resolve('.bench-out');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
  return file;
}
