// CPU time and memory of a process tree, read from /proc (Linux). The bottleneck of a load is the
// side whose CPU time is near 100% of its one pinned core.
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second for /proc/PID/stat (USER_HZ; 100 on every mainstream Linux build). */
const TICKS_PER_SECOND = 100;

/** Fields of /proc/PID/stat after the "(comm)" field, which may itself hold spaces and parens. */
function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Parses utime + stime (fields 14 and 15 of proc(5)) from one stat line; exported for tests. */
export function cpuTicksFromStat(statLine: string): number {
  const rest = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  return Number(rest[11]) + Number(rest[12]);
}

/** pid plus every descendant (nginx master + worker; taskset already exec'd). */
export function processTree(root: number): number[] {
  const parentOf = new Map<number, number>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [root];
  }
  for (const name of entries) {
    const code = name.charCodeAt(0);
    if (code < 48 || code > 57) continue;
    const f = statFields(Number(name));
    if (f) parentOf.set(Number(name), Number(f[1]));
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parentOf) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

/** CPU seconds (user + system, all threads) used so far by the tree under `root`. */
export function cpuSeconds(root: number | readonly number[]): number {
  let ticks = 0;
  for (const pid of typeof root === 'number' ? processTree(root) : root) {
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / TICKS_PER_SECOND;
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'latin1');
    const at = text.indexOf(field + ':');
    if (at < 0) return 0;
    return parseInt(text.slice(at + field.length + 1), 10) || 0;
  } catch {
    return 0;
  }
}

/** Resident set of the whole tree now, in bytes. */
export function rssBytes(root: number | readonly number[]): number {
  let kb = 0;
  for (const pid of typeof root === 'number' ? processTree(root) : root) kb += statusKb(pid, 'VmRSS');
  return kb * 1024;
}

/** Peak resident set (VmHWM) summed over the tree, in bytes. */
export function peakRssBytes(root: number): number {
  let kb = 0;
  for (const pid of processTree(root)) kb += statusKb(pid, 'VmHWM');
  return kb * 1024;
}

/** Busy and total jiffies per CPU from /proc/stat (index = cpu number; proc(5) field order). */
export function coreJiffies(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  try {
    for (const line of readFileSync('/proc/stat', 'latin1').split('\n')) {
      const m = /^cpu(\d+) (.*)$/.exec(line);
      if (!m) continue;
      const f = m[2]!.trim().split(/\s+/).map(Number);
      const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
      // user + nice + system + steal: time processes (or the hypervisor) took. irq and softirq
      // are left out: on loopback they are mostly our own traffic's packet processing.
      out[Number(m[1])] = { busy: f[0]! + f[1]! + f[2]! + (f[7] ?? 0), total };
    }
  } catch {
    /* not Linux */
  }
  return out;
}

export interface LoadSample {
  /** Busy fraction of each CPU over the same window, whoever used it (others' work = noise). */
  coreBusy?: number[];
  /** Server CPU as a fraction of one core over the load (1.0 = its pinned core was saturated). */
  serverCpu: number;
  /** Load generator CPU as a fraction of one core. */
  generatorCpu: number;
  /** Highest summed RSS of the server tree seen while the load ran, in bytes. */
  serverPeakRss: number;
  wallSeconds: number;
}

/**
 * Samples a server and its load generators while a load runs. Every 100 ms it reads the server's
 * RSS and the CPU seconds of both sides; utilisation is taken over the window in which every
 * generator was alive (after a short warm-up), so generator start-up and exit are left out.
 */
export class LoadMeter {
  private peakRss: number;
  private readonly timer: NodeJS.Timeout;
  private readonly generators: number[] = [];
  private readonly points: { t: number; server: number; gen: number; cores: { busy: number; total: number }[] }[] = [];
  private readonly started = performance.now();
  /** Read once: scanning all of /proc every poll would cost the machine more than the sample is worth. */
  private readonly serverTree: number[];

  constructor(serverPid: number, private readonly warmupMs = 500) {
    this.serverTree = processTree(serverPid);
    this.peakRss = rssBytes(this.serverTree);
    this.timer = setInterval(() => this.poll(), 100);
    this.timer.unref();
  }

  /** Registers a generator process (call right after spawning it). */
  addGenerator(pid: number): void {
    this.generators.push(pid);
  }

  private poll(): void {
    const rss = rssBytes(this.serverTree);
    if (rss > this.peakRss) this.peakRss = rss;
    if (this.generators.length === 0) return;
    let gen = 0;
    for (const pid of this.generators) {
      const s = cpuSeconds([pid]);
      if (s === 0) return; // one has exited (or not started): outside the window
      gen += s;
    }
    this.points.push({ t: performance.now(), server: cpuSeconds(this.serverTree), gen, cores: coreJiffies() });
  }

  /**
   * Ends sampling. `window` (performance.now() times) restricts CPU to the measured interval when
   * the caller knows it (MX/1 generators connect and join before they load).
   */
  stop(window?: { from: number; to: number }): LoadSample {
    clearInterval(this.timer);
    const wall = (performance.now() - this.started) / 1000;
    let pts = this.points;
    if (window) {
      const inside = pts.filter((p) => p.t >= window.from && p.t <= window.to);
      if (inside.length >= 2) pts = inside;
    }
    let first = window ? 0 : pts.findIndex((p) => p.t - pts[0]!.t >= this.warmupMs);
    if (first < 0 || pts.length - 1 - first < 2) first = 0;
    const a = pts[first];
    const b = pts[pts.length - 1];
    if (!a || !b || b.t <= a.t) return { serverCpu: 0, generatorCpu: 0, serverPeakRss: this.peakRss, wallSeconds: wall };
    const secs = (b.t - a.t) / 1000;
    const coreBusy = b.cores.map((c, i) => {
      const before = a.cores[i];
      return before && c.total > before.total ? (c.busy - before.busy) / (c.total - before.total) : NaN;
    });
    return { serverCpu: (b.server - a.server) / secs, generatorCpu: (b.gen - a.gen) / secs, serverPeakRss: this.peakRss, wallSeconds: wall, coreBusy };
  }
}

/**
 * "server" or "generator" when one side used >= 90% of its core, else "neither (…)" with both
 * numbers. With `coreBusy`, work by other processes on the two cores (a shared machine) above
 * 15% is flagged as noise: such a run's numbers are not the servers' own.
 */
export function bottleneck(s: Pick<LoadSample, 'serverCpu' | 'generatorCpu' | 'coreBusy'>, serverCore = 0, generatorCore = 1): string {
  const pct = (x: number): string => `${Math.round(x * 100)}%`;
  const both = `server ${pct(s.serverCpu)}, gen ${pct(s.generatorCpu)}`;
  let noise = '';
  if (s.coreBusy) {
    const others = Math.max((s.coreBusy[serverCore] ?? 0) - s.serverCpu, (s.coreBusy[generatorCore] ?? 0) - s.generatorCpu);
    if (others > 0.15) noise = `; noisy: others used ${pct(others)} of a core`;
  }
  if (s.serverCpu >= 0.9 && s.serverCpu >= s.generatorCpu) return `server (${both}${noise})`;
  if (s.generatorCpu >= 0.9) return `generator (${both}${noise})`;
  return `neither (${both}${noise})`;
}

/** Median CPU figures of several runs of one load, for one bottleneck note. */
export function medianSample(runs: readonly Pick<LoadSample, 'serverCpu' | 'generatorCpu' | 'coreBusy'>[]): Pick<LoadSample, 'serverCpu' | 'generatorCpu' | 'coreBusy'> {
  const med = (v: number[]): number => {
    const s = v.filter(Number.isFinite).sort((a, b) => a - b);
    return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const cores = Math.max(0, ...runs.map((r) => r.coreBusy?.length ?? 0));
  return {
    serverCpu: med(runs.map((r) => r.serverCpu)),
    generatorCpu: med(runs.map((r) => r.generatorCpu)),
    coreBusy: Array.from({ length: cores }, (_, i) => med(runs.map((r) => r.coreBusy?.[i] ?? NaN))),
  };
}
