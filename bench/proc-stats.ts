/**
 * CPU and memory of the processes under test, from /proc (Linux): utime + stime of
 * /proc/PID/stat in clock ticks, VmRSS and VmHWM of /proc/PID/status.
 */
import { readFileSync } from 'node:fs';

/** sysconf(_SC_CLK_TCK): 100 on every Linux architecture Node supports. */
const clock_ticks_per_s = 100;

export interface ProcessSample {
  cpu_s: number;
  rss_bytes: number;
  rss_bytes_peak: number;
}

export function sample_process(pid: number): ProcessSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: fields are counted after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu_ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return {
      cpu_s: cpu_ticks / clock_ticks_per_s,
      rss_bytes: kb('VmRSS') * 1024,
      rss_bytes_peak: kb('VmHWM') * 1024,
    };
  } catch {
    return undefined; // the process has exited
  }
}

export interface ProcessUsage {
  name: string;
  pids: number[];
  /** CPU seconds while the chargers ran (the load window), and until the end of the run. */
  cpu_s: number;
  cpu_s_total: number;
  /** CPU seconds per second over the load window; 1 = one core busy. */
  cpu_cores_mean: number;
  cpu_cores_max: number;
  rss_mb: number;
  rss_mb_max: number;
}

/**
 * Samples named groups of processes (a group: e.g. all load agents) once per call of tick();
 * keeps per-interval CPU for the time series and cumulative CPU for the summary. A process
 * that has exited keeps its last reading, so a group's CPU never goes backwards.
 */
export class ProcessMonitor {
  private readonly cpu_s_of_pid = new Map<number, number>();
  private readonly history = new Map<string, { at_ms: number; cpu_s: number; rss_bytes: number }[]>();
  private readonly cores_max = new Map<string, number>();
  private readonly rss_max = new Map<string, number>();
  private window_end_ms = Number.POSITIVE_INFINITY;

  constructor(private readonly groups: () => { name: string; pids: number[] }[]) {}

  /** The load window ends now: summary() reports mean cores up to here. */
  end_window(now_ms: number): void {
    this.window_end_ms = now_ms;
  }

  /** Returns each group's CPU cores used since the previous tick and its current RSS. */
  tick(now_ms: number): Record<string, { cpu_cores: number; rss_mb: number }> {
    const out: Record<string, { cpu_cores: number; rss_mb: number }> = {};
    for (const group of this.groups()) {
      let cpu_s = 0;
      let rss_bytes = 0;
      for (const pid of group.pids) {
        const s = sample_process(pid);
        if (s !== undefined) {
          this.cpu_s_of_pid.set(pid, s.cpu_s);
          rss_bytes += s.rss_bytes;
        }
        cpu_s += this.cpu_s_of_pid.get(pid) ?? 0;
      }
      const history = this.history.get(group.name) ?? [];
      this.history.set(group.name, history);
      const previous = history.at(-1);
      const cpu_cores =
        previous === undefined || now_ms <= previous.at_ms
          ? 0
          : Math.max(0, (cpu_s - previous.cpu_s) / ((now_ms - previous.at_ms) / 1000));
      history.push({ at_ms: now_ms, cpu_s, rss_bytes });
      if (now_ms <= this.window_end_ms) {
        this.cores_max.set(group.name, Math.max(this.cores_max.get(group.name) ?? 0, cpu_cores));
      }
      this.rss_max.set(group.name, Math.max(this.rss_max.get(group.name) ?? 0, rss_bytes));
      out[group.name] = { cpu_cores, rss_mb: rss_bytes / 2 ** 20 };
    }
    return out;
  }

  summary(): ProcessUsage[] {
    return this.groups().map((group) => {
      const history = this.history.get(group.name) ?? [];
      const first = history[0];
      const last = history.at(-1);
      const in_window = history.filter((h) => h.at_ms <= this.window_end_ms);
      const window_last = in_window.at(-1);
      const window_s = first && window_last ? (window_last.at_ms - first.at_ms) / 1000 : 0;
      const cpu_s = first && window_last ? window_last.cpu_s - first.cpu_s : 0;
      return {
        name: group.name,
        pids: group.pids,
        cpu_s: round(cpu_s, 2),
        cpu_s_total: first && last ? round(last.cpu_s - first.cpu_s, 2) : 0,
        cpu_cores_mean: window_s > 0 ? round(cpu_s / window_s, 2) : 0,
        cpu_cores_max: round(this.cores_max.get(group.name) ?? 0, 2),
        rss_mb: round((last?.rss_bytes ?? 0) / 2 ** 20, 1),
        rss_mb_max: round((this.rss_max.get(group.name) ?? 0) / 2 ** 20, 1),
      };
    });
  }
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
