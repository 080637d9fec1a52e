/**
 * Trace events: QEMU's `-trace` event names and formats (hw/intc/trace-events, `gicv3_*`) where
 * QEMU has the event, KVM's tracepoint or function names (`vgic_*`, arch/arm64/kvm/vgic/trace.h)
 * for the steps only KVM's design has (ap_list flush/sync, line injection), and `vgic_*` names of
 * vgic's own for what neither traces (translation-cache misses, ITS command errors).
 *
 * Cost when off: a hook is the one line `if (tracing.on !== 0) traceEmit(EV_X, a, b, …)` with
 * numeric arguments, so a disabled hook is one property load and a branch: no closure, object or
 * string is built. Subscriptions (traceSubscribe) take QEMU-style glob patterns; an event is
 * delivered to every subscription whose patterns enable it.
 *
 * Threads: subscriptions are per thread (per JavaScript realm): an event fires on the thread that
 * performs the operation and reaches the subscriptions made on that thread. `vgic run` and
 * `vgic linux` run every vCPU on the main thread, so one subscription sees everything; with the
 * worker-thread runtime, subscribe inside the worker (a program module) and forward what you need.
 * (The inspector's plots need no trace: they read counters from the shared state buffer.)
 *
 * Who may call: hooks anywhere in src/ (core, its, mmio, device); subscribers through the public
 * API. A listener runs inside the operation it traces, possibly under GIC locks: it must not call
 * into the GIC. A listener that throws is unsubscribed and its error kept (subscription.error);
 * the GIC operation is never interrupted.
 */

import { describeValue, VgicError } from '../arch/errors.ts';

/** One event type: its name, argument names, QEMU-style format (%x, %d, %u) and where the name comes from. */
export interface TraceEventType {
  readonly name: string;
  readonly args: readonly string[];
  readonly format: string;
  readonly origin: 'qemu' | 'kvm' | 'vgic';
}

/** One event as a subscriber sees it. */
export interface TraceEvent {
  readonly name: string;
  /** performance.now() of the thread that emitted it (ms). */
  readonly time: number;
  readonly args: Readonly<Record<string, number>>;
}

// name, arguments, format, origin. QEMU's formats, with vgic's extra arguments (the ITS index) last.
const TABLE: readonly (readonly [string, string, string, 'qemu' | 'kvm' | 'vgic'])[] = [
  // Distributor, redistributors (MMIO exits of a vCPU; `cpu` of a redistributor is its vCPU).
  ['gicv3_dist_read', 'offset data size', 'GICv3 distributor read: offset 0x%x data 0x%x size %u', 'qemu'],
  ['gicv3_dist_badread', 'offset size', 'GICv3 distributor read: offset 0x%x size %u: error', 'qemu'],
  ['gicv3_dist_write', 'offset data size', 'GICv3 distributor write: offset 0x%x data 0x%x size %u', 'qemu'],
  [
    'gicv3_dist_badwrite',
    'offset data size',
    'GICv3 distributor write: offset 0x%x data 0x%x size %u: error',
    'qemu',
  ],
  ['gicv3_dist_set_irq', 'irq level', 'GICv3 distributor interrupt %d level changed to %d', 'qemu'],
  [
    'gicv3_redist_read',
    'cpu offset data size',
    'GICv3 redistributor 0x%x read: offset 0x%x data 0x%x size %u',
    'qemu',
  ],
  [
    'gicv3_redist_badread',
    'cpu offset size',
    'GICv3 redistributor 0x%x read: offset 0x%x size %u: error',
    'qemu',
  ],
  [
    'gicv3_redist_write',
    'cpu offset data size',
    'GICv3 redistributor 0x%x write: offset 0x%x data 0x%x size %u',
    'qemu',
  ],
  [
    'gicv3_redist_badwrite',
    'cpu offset data size',
    'GICv3 redistributor 0x%x write: offset 0x%x data 0x%x size %u: error',
    'qemu',
  ],
  [
    'gicv3_redist_set_irq',
    'cpu irq level',
    'GICv3 redistributor 0x%x interrupt %d level changed to %d',
    'qemu',
  ],
  // ITS
  [
    'gicv3_its_read',
    'offset data size its',
    'GICv3 ITS read: offset 0x%x data 0x%x size %u (ITS %u)',
    'qemu',
  ],
  ['gicv3_its_badread', 'offset size its', 'GICv3 ITS read: offset 0x%x size %u: error (ITS %u)', 'qemu'],
  [
    'gicv3_its_write',
    'offset data size its',
    'GICv3 ITS write: offset 0x%x data 0x%x size %u (ITS %u)',
    'qemu',
  ],
  [
    'gicv3_its_badwrite',
    'offset data size its',
    'GICv3 ITS write: offset 0x%x data 0x%x size %u: error (ITS %u)',
    'qemu',
  ],
  [
    'gicv3_its_translation_write',
    'offset data size requester_id its',
    'GICv3 ITS TRANSLATER write: offset 0x%x data 0x%x size %u requester_id 0x%x (ITS %u)',
    'qemu',
  ],
  [
    'gicv3_its_process_command',
    'rd_offset cmd its',
    'GICv3 ITS: processing command at offset 0x%x: 0x%x (ITS %u)',
    'qemu',
  ],
  ['gicv3_its_cmd_int', 'devid eventid', 'GICv3 ITS: command INT DeviceID 0x%x EventID 0x%x', 'qemu'],
  ['gicv3_its_cmd_clear', 'devid eventid', 'GICv3 ITS: command CLEAR DeviceID 0x%x EventID 0x%x', 'qemu'],
  ['gicv3_its_cmd_discard', 'devid eventid', 'GICv3 ITS: command DISCARD DeviceID 0x%x EventID 0x%x', 'qemu'],
  ['gicv3_its_cmd_sync', '', 'GICv3 ITS: command SYNC', 'qemu'],
  [
    'gicv3_its_cmd_mapd',
    'devid size ittaddr valid',
    'GICv3 ITS: command MAPD DeviceID 0x%x Size 0x%x ITT_addr 0x%x V %d',
    'qemu',
  ],
  ['gicv3_its_cmd_mapc', 'icid rdbase valid', 'GICv3 ITS: command MAPC ICID 0x%x RDbase 0x%x V %d', 'qemu'],
  [
    'gicv3_its_cmd_mapi',
    'devid eventid icid',
    'GICv3 ITS: command MAPI DeviceID 0x%x EventID 0x%x ICID 0x%x',
    'qemu',
  ],
  [
    'gicv3_its_cmd_mapti',
    'devid eventid icid intid',
    'GICv3 ITS: command MAPTI DeviceID 0x%x EventID 0x%x ICID 0x%x pINTID 0x%x',
    'qemu',
  ],
  ['gicv3_its_cmd_inv', 'devid eventid', 'GICv3 ITS: command INV DeviceID 0x%x EventID 0x%x', 'qemu'],
  ['gicv3_its_cmd_invall', 'icid', 'GICv3 ITS: command INVALL ICID 0x%x', 'qemu'],
  ['gicv3_its_cmd_movall', 'rd1 rd2', 'GICv3 ITS: command MOVALL RDbase1 0x%x RDbase2 0x%x', 'qemu'],
  [
    'gicv3_its_cmd_movi',
    'devid eventid icid',
    'GICv3 ITS: command MOVI DeviceID 0x%x EventID 0x%x ICID 0x%x',
    'qemu',
  ],
  [
    'gicv3_its_cmd_vmapi',
    'devid eventid vpeid doorbell',
    'GICv3 ITS: command VMAPI DeviceID 0x%x EventID 0x%x vPEID 0x%x Dbell_pINTID 0x%x',
    'qemu',
  ],
  [
    'gicv3_its_cmd_vmapti',
    'devid eventid vpeid vintid doorbell',
    'GICv3 ITS: command VMAPI DeviceID 0x%x EventID 0x%x vPEID 0x%x vINTID 0x%x Dbell_pINTID 0x%x',
    'qemu',
  ],
  [
    'gicv3_its_cmd_vmapp',
    'vpeid rdbase valid vptaddr vptsize',
    'GICv3 ITS: command VMAPP vPEID 0x%x RDbase 0x%x V %d VPT_addr 0x%x VPT_size 0x%x',
    'qemu',
  ],
  ['gicv3_its_cmd_vmovp', 'vpeid rdbase', 'GICv3 ITS: command VMOVP vPEID 0x%x RDbase 0x%x', 'qemu'],
  ['gicv3_its_cmd_vsync', '', 'GICv3 ITS: command VSYNC', 'qemu'],
  [
    'gicv3_its_cmd_vmovi',
    'devid eventid vpeid dbvalid doorbell',
    'GICv3 ITS: command VMOVI DeviceID 0x%x EventID 0x%x vPEID 0x%x D %d Dbell_pINTID 0x%x',
    'qemu',
  ],
  ['gicv3_its_cmd_vinvall', 'vpeid', 'GICv3 ITS: command VINVALL vPEID 0x%x', 'qemu'],
  ['vgic_its_cmd_invdb', 'vpeid', 'ITS: command INVDB vPEID 0x%x', 'vgic'],
  ['vgic_its_cmd_vsgi', 'vpeid sgi', 'ITS: command VSGI vPEID 0x%x vINTID %d', 'vgic'],
  ['gicv3_its_cmd_unknown', 'cmd', 'GICv3 ITS: unknown command 0x%x', 'qemu'],
  ['vgic_its_cmd_error', 'its cmd code', 'ITS %u: command 0x%x failed: E_ITS code 0x%x', 'vgic'],
  [
    'gicv3_its_translation_fail',
    'its devid eventid busy',
    'ITS %u: MSI DeviceID 0x%x EventID 0x%x not translated (busy %d)',
    'vgic',
  ],
  [
    'vgic_its_cache_miss',
    'its devid eventid',
    'ITS %u: translation cache miss DeviceID 0x%x EventID 0x%x',
    'vgic',
  ],
  // CPU interface (the guest's ICC_* accesses, which act on the list registers as ICV_* would)
  ['gicv3_icc_pmr_read', 'cpu val', 'GICv3 ICC_PMR read cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_pmr_write', 'cpu val', 'GICv3 ICC_PMR write cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_bpr_read', 'grp cpu val', 'GICv3 ICC_BPR%d read cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_bpr_write', 'grp cpu val', 'GICv3 ICC_BPR%d write cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_ap_read', 'grp regno cpu val', 'GICv3 ICC_AP%dR%d read cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_ap_write', 'grp regno cpu val', 'GICv3 ICC_AP%dR%d write cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_igrpen_read', 'grp cpu val', 'GICv3 ICC_IGRPEN%d read cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_igrpen_write', 'grp cpu val', 'GICv3 ICC_IGRPEN%d write cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_ctlr_read', 'cpu val', 'GICv3 ICC_CTLR read cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_ctlr_write', 'cpu val', 'GICv3 ICC_CTLR write cpu 0x%x value 0x%x', 'qemu'],
  [
    'gicv3_icc_generate_sgi',
    'cpuid irq irm aff targetlist',
    'GICv3 CPU i/f 0x%x generating SGI %d IRM %d target affinity 0x%xxx targetlist 0x%x',
    'qemu',
  ],
  ['gicv3_icc_iar0_read', 'cpu val', 'GICv3 ICC_IAR0 read cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_iar1_read', 'cpu val', 'GICv3 ICC_IAR1 read cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_eoir_write', 'grp cpu val', 'GICv3 ICC_EOIR%d write cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_hppir0_read', 'cpu val', 'GICv3 ICC_HPPIR0 read cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_hppir1_read', 'cpu val', 'GICv3 ICC_HPPIR1 read cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_dir_write', 'cpu val', 'GICv3 ICC_DIR write cpu 0x%x value 0x%x', 'qemu'],
  ['gicv3_icc_rpr_read', 'cpu val', 'GICv3 ICC_RPR read cpu 0x%x value 0x%x', 'qemu'],
  [
    'gicv3_cpuif_virt_set_irqs',
    'cpuid fiqlevel irqlevel',
    'GICv3 CPU i/f 0x%x virt HPPI update: setting FIQ %d IRQ %d',
    'qemu',
  ],
  [
    'gicv3_cpuif_virt_set_maint_irq',
    'cpuid maintlevel',
    'GICv3 CPU i/f 0x%x virt HPPI update: setting maintenance-irq %d',
    'qemu',
  ],
  // KVM's design
  ['vgic_update_irq_pending', 'vcpu_id irq level', 'VCPU: %d, IRQ %d, level: %d', 'kvm'],
  [
    'vgic_flush_hwstate',
    'vcpu used_lrs ap_list hcr',
    'vCPU %d entry: %d LRs filled from an ap_list of %d, ICH_HCR enables 0x%x',
    'kvm',
  ],
  ['vgic_sync_hwstate', 'vcpu', 'vCPU %d exit: LRs folded back, ap_list pruned', 'kvm'],
];

/** Every event vgic can emit, in id order. */
export const TRACE_EVENTS: readonly TraceEventType[] = TABLE.map(([name, args, format, origin]) => ({
  name,
  args: args === '' ? [] : args.split(' '),
  format,
  origin,
}));

const N = TRACE_EVENTS.length;

function id(name: string): number {
  const i = TABLE.findIndex((e) => e[0] === name);
  if (i < 0) throw new Error(`no trace event ${name}`);
  return i;
}

export const EV_GICV3_DIST_READ = id('gicv3_dist_read');
export const EV_GICV3_DIST_SET_IRQ = id('gicv3_dist_set_irq');
export const EV_GICV3_REDIST_SET_IRQ = id('gicv3_redist_set_irq');
export const EV_GICV3_ITS_PROCESS_COMMAND = id('gicv3_its_process_command');
export const EV_GICV3_ITS_CMD_INT = id('gicv3_its_cmd_int');
export const EV_GICV3_ITS_CMD_CLEAR = id('gicv3_its_cmd_clear');
export const EV_GICV3_ITS_CMD_DISCARD = id('gicv3_its_cmd_discard');
export const EV_GICV3_ITS_CMD_SYNC = id('gicv3_its_cmd_sync');
export const EV_GICV3_ITS_CMD_MAPD = id('gicv3_its_cmd_mapd');
export const EV_GICV3_ITS_CMD_MAPC = id('gicv3_its_cmd_mapc');
export const EV_GICV3_ITS_CMD_MAPI = id('gicv3_its_cmd_mapi');
export const EV_GICV3_ITS_CMD_MAPTI = id('gicv3_its_cmd_mapti');
export const EV_GICV3_ITS_CMD_INV = id('gicv3_its_cmd_inv');
export const EV_GICV3_ITS_CMD_INVALL = id('gicv3_its_cmd_invall');
export const EV_GICV3_ITS_CMD_MOVALL = id('gicv3_its_cmd_movall');
export const EV_GICV3_ITS_CMD_MOVI = id('gicv3_its_cmd_movi');
export const EV_GICV3_ITS_CMD_UNKNOWN = id('gicv3_its_cmd_unknown');
export const EV_GICV3_ITS_CMD_VMAPI = id('gicv3_its_cmd_vmapi');
export const EV_GICV3_ITS_CMD_VMAPTI = id('gicv3_its_cmd_vmapti');
export const EV_GICV3_ITS_CMD_VMAPP = id('gicv3_its_cmd_vmapp');
export const EV_GICV3_ITS_CMD_VMOVP = id('gicv3_its_cmd_vmovp');
export const EV_GICV3_ITS_CMD_VSYNC = id('gicv3_its_cmd_vsync');
export const EV_GICV3_ITS_CMD_VMOVI = id('gicv3_its_cmd_vmovi');
export const EV_GICV3_ITS_CMD_VINVALL = id('gicv3_its_cmd_vinvall');
export const EV_VGIC_ITS_CMD_INVDB = id('vgic_its_cmd_invdb');
export const EV_VGIC_ITS_CMD_VSGI = id('vgic_its_cmd_vsgi');
export const EV_VGIC_ITS_CMD_ERROR = id('vgic_its_cmd_error');
export const EV_GICV3_ITS_TRANSLATION_FAIL = id('gicv3_its_translation_fail');
export const EV_VGIC_ITS_CACHE_MISS = id('vgic_its_cache_miss');
export const EV_GICV3_ICC_IAR0_READ = id('gicv3_icc_iar0_read');
export const EV_GICV3_ICC_IAR1_READ = id('gicv3_icc_iar1_read');
export const EV_GICV3_ICC_EOIR_WRITE = id('gicv3_icc_eoir_write');
export const EV_GICV3_ICC_GENERATE_SGI = id('gicv3_icc_generate_sgi');
export const EV_GICV3_CPUIF_VIRT_SET_IRQS = id('gicv3_cpuif_virt_set_irqs');
export const EV_GICV3_CPUIF_VIRT_SET_MAINT_IRQ = id('gicv3_cpuif_virt_set_maint_irq');
export const EV_VGIC_UPDATE_IRQ_PENDING = id('vgic_update_irq_pending');
export const EV_VGIC_FLUSH_HWSTATE = id('vgic_flush_hwstate');
export const EV_VGIC_SYNC_HWSTATE = id('vgic_sync_hwstate');

/** The id of an event by name (for hooks that pick the event at run time), or -1. */
export function traceEventId(name: string): number {
  return TABLE.findIndex((e) => e[0] === name);
}

/**
 * `on` is non-zero while any event is enabled on this thread: the one word every hook reads.
 * Mutated only by this module.
 */
export const tracing = { on: 0 };

/** Per event: how many live subscriptions enable it. */
const enabled = new Int32Array(N);

type Listener = (e: TraceEvent) => void;

interface Sub {
  readonly mask: Uint8Array;
  readonly listener: Listener;
  live: boolean;
  error: unknown;
}

const subs: Sub[] = [];

/** A live subscription: `unsubscribe()` ends it; `error` holds what its listener threw, if it did. */
export interface TraceSubscription {
  /** The events this subscription receives. */
  readonly events: readonly string[];
  readonly error: unknown;
  unsubscribe(): void;
}

function globRegex(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/**
 * Which events a pattern list enables, as QEMU's `-trace` reads it: comma-separated globs (`*`,
 * `?`), applied in order; a glob with a leading `-` disables what it matches. Throws VgicError if a
 * glob matches no event (as QEMU warns), naming the families there are.
 */
export function traceMatch(patterns: string | readonly string[]): Uint8Array {
  const list = (typeof patterns === 'string' ? [patterns] : patterns).flatMap((p) => {
    if (typeof p !== 'string')
      throw new VgicError('INVALID_ARGUMENT', `trace patterns are strings, got ${describeValue(p)}`);
    return p.split(',');
  });
  const mask = new Uint8Array(N);
  for (const raw of list) {
    const p = raw.trim();
    if (p === '') continue;
    const off = p.startsWith('-');
    const re = globRegex(off ? p.slice(1) : p);
    let hit = false;
    for (let i = 0; i < N; i++) {
      if (re.test(TABLE[i][0])) {
        mask[i] = off ? 0 : 1;
        hit = true;
      }
    }
    if (!hit) {
      throw new VgicError(
        'INVALID_ARGUMENT',
        `trace pattern '${p}' matches no event; events are gicv3_dist_*, gicv3_redist_*, gicv3_its_*, gicv3_icc_*, gicv3_cpuif_*, vgic_* (vgic trace-events lists them)`,
      );
    }
  }
  return mask;
}

function recount(): void {
  enabled.fill(0);
  for (const s of subs) {
    if (!s.live) continue;
    for (let i = 0; i < N; i++) enabled[i] += s.mask[i];
  }
  let any = 0;
  for (let i = 0; i < N; i++) any |= enabled[i];
  tracing.on = any !== 0 ? 1 : 0;
}

/**
 * Subscribes `listener` to the events the patterns enable (see traceMatch), on this thread.
 * The listener gets each event as it happens.
 */
export function traceSubscribe(
  patterns: string | readonly string[],
  listener: (e: TraceEvent) => void,
): TraceSubscription {
  if (typeof listener !== 'function')
    throw new VgicError(
      'INVALID_ARGUMENT',
      `trace listener must be a function, got ${describeValue(listener)}`,
    );
  const sub: Sub = { mask: traceMatch(patterns), listener, live: true, error: undefined };
  subs.push(sub);
  recount();
  return {
    events: TABLE.filter((_, i) => sub.mask[i] !== 0).map((e) => e[0]),
    get error() {
      return sub.error;
    },
    unsubscribe() {
      if (!sub.live) return;
      sub.live = false;
      subs.splice(subs.indexOf(sub), 1);
      recount();
    },
  };
}

/**
 * Emits event `ev` with its numeric arguments (in the table's order). Hooks call it only when
 * `tracing.on` is set; it returns at once if no subscription enables this event.
 */
export function traceEmit(ev: number, a = 0, b = 0, c = 0, d = 0, e = 0): void {
  if (enabled[ev] === 0) return;
  const names = TRACE_EVENTS[ev].args;
  const vals = [a, b, c, d, e];
  const args: Record<string, number> = {};
  for (let i = 0; i < names.length; i++) args[names[i]] = vals[i];
  const event: TraceEvent = { name: TABLE[ev][0], time: performance.now(), args };
  // A copy: a listener may unsubscribe (itself or another) while we deliver.
  for (const s of subs.slice()) {
    if (!s.live || s.mask[ev] === 0) continue;
    try {
      s.listener(event);
    } catch (err) {
      s.error = err;
      s.live = false;
      subs.splice(subs.indexOf(s), 1);
      recount();
    }
  }
}

/** QEMU's log line for an event: `name format-with-arguments`. */
export function formatTraceEvent(e: TraceEvent): string {
  const t = TRACE_EVENTS.find((x) => x.name === e.name);
  if (t === undefined) return e.name;
  let i = 0;
  const text = t.format.replace(/%[xdu]/g, (spec) => {
    const v = e.args[t.args[i++]] ?? 0;
    return spec === '%x' ? (v < 0 && v >= -0x80000000 ? v >>> 0 : v).toString(16) : String(v);
  });
  return `${e.name} ${text}`;
}
