/**
 * `vgic qtest`: a line protocol in the style of QEMU's qtest for driving vgic from any language.
 * One command per line; numbers in hex (0x…) or decimal; answers `OK`, `OK 0x…` (16 hex digits,
 * as QEMU) or `ERR reason`. A bad line gets ERR and the session goes on: nothing a script sends
 * can end it but `quit` or the end of input.
 *
 * Commands on a CPU behave as that vCPU executing one instruction (device/vcpu.ts). MMIO commands
 * run on the current CPU (`cpu N` selects it, default 0). `msi` is a device's MSI (KVM_SIGNAL_MSI)
 * and `its_errors` an ITS's counters, as one line of NAME=count pairs.
 *
 * Who may call: the CLI (main.ts) and tests, one session per Vgic.
 */

import { VgicError } from '../arch/errors.ts';
import { parseSysreg } from '../arch/sysreg.ts';
import type { KvmDevice } from '../device/kvm-device.ts';
import { KvmVm } from '../device/kvm-device.ts';
import type { Vgic } from '../device/vgic.ts';

const HELP = [
  'writeb|writew|writel|writeq ADDR VALUE   store to guest physical ADDR (GIC frames or RAM)',
  'readb|readw|readl|readq ADDR             load; answers OK 0x<16 hex digits>',
  'sysreg_write CPU NAME VALUE              MSR (NAME: ICC_IAR1_EL1 or s3_0_c12_c12_0)',
  'sysreg_read CPU NAME                     MRS',
  'irq_line INTID LEVEL                     drive an SPI line (KVM_IRQ_LINE)',
  'ppi_line CPU INTID LEVEL                 drive a PPI line',
  'msi DOORBELL DEVID EVENTID               KVM_SIGNAL_MSI; answers OK delivered|blocked|busy',
  '                                         (ITS k doorbell: its base + 0x10040, e.g. 0x08090040)',
  'its_errors ITS                           ITS counters: OK E_ITS_…=n … errors=n commands=n …',
  'kvm_set_attr DEV GROUP ATTR [VALUE]      KVM_SET_DEVICE_ATTR (DEV: gic or itsN; GROUP: a number',
  '                                         or a name, e.g. KVM_DEV_ARM_VGIC_GRP_DIST_REGS or DIST_REGS)',
  'kvm_get_attr DEV GROUP ATTR [VALUE]      KVM_GET_DEVICE_ATTR; answers OK 0x<16 hex digits>',
  'kvm_has_attr DEV GROUP ATTR              KVM_HAS_DEVICE_ATTR; answers OK 1 or OK 0',
  'cpu N                                    run later MMIO commands on vCPU N',
  'wfi CPU [TIMEOUT_MS]                     WFI; answers OK irq|timeout',
  'online CPU [0|1]                         power state of vCPU CPU (KVM_SET_MP_STATE): OK 1 (on) or 0',
  'clock_step TICKS                         advance virtual time (--virtual-time)',
  'clock_read                               CNTVCT',
  'stats                                    error and exit counters, as JSON',
  'dump [json]                              vgic-state (KVM debugfs style): text lines as # …, then OK;',
  '                                         json: OK {…} on one line',
  'explain INTID [CPU]                      why INTID is not signalled (CPU: of an SGI/PPI, or the vCPU',
  '                                         asked about): OK signalled|blocked <first reason>',
  'help                                     this text',
  'quit                                     end the session',
];

class QtestError extends Error {}

/** KVM_DEV_ARM_VGIC_GRP_* by name (without the prefix), for kvm_*_attr. */
const KVM_GROUPS: Record<string, number> = {
  ADDR: 0,
  DIST_REGS: 1,
  CPU_REGS: 2,
  NR_IRQS: 3,
  CTRL: 4,
  REDIST_REGS: 5,
  CPU_SYSREGS: 6,
  LEVEL_INFO: 7,
  ITS_REGS: 8,
  MAINT_IRQ: 9,
};

function parseNum(token: string | undefined, what: string): bigint {
  if (token === undefined) throw new QtestError(`missing ${what}`);
  if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(token))
    throw new QtestError(`bad ${what} '${token}': use hex (0x…) or decimal`);
  return BigInt(token);
}

function parseSmall(token: string | undefined, what: string, max: number): number {
  const v = parseNum(token, what);
  if (v > BigInt(max)) throw new QtestError(`${what} ${token} is out of range 0..${max}`);
  return Number(v);
}

const hex16 = (v: bigint): string => `0x${v.toString(16).padStart(16, '0')}`;

const WIDTH: Record<string, number> = { b: 1, w: 2, l: 4, q: 8 };
const ADDR_MAX = 2n ** 64n - 1n;

/**
 * ITS k's counters as `NAME=count` pairs: every E_ITS_* condition (fixed order), their sum as
 * `errors`, then the other ITS statistics (device/its.ts ItsStats).
 */
function itsCounters(gic: Vgic, k: number): string {
  const st = gic.its(k).stats();
  const pairs: string[] = [];
  let total = 0;
  for (const [name, n] of Object.entries(st.errors)) {
    pairs.push(`${name}=${n}`);
    total += n;
  }
  pairs.push(`errors=${total}`);
  for (const [name, n] of Object.entries(st)) if (typeof n === 'number') pairs.push(`${name}=${n}`);
  return pairs.join(' ');
}

export class QtestSession {
  readonly gic: Vgic;
  private cpu = 0;
  /** Set once `quit` has been read. */
  done = false;

  private kvm: KvmVm | undefined;

  constructor(gic: Vgic) {
    this.gic = gic;
  }

  /** The KVM device `gic` or `itsN` of this session's GIC. */
  private kvmDevice(token: string | undefined): KvmDevice {
    this.kvm ??= KvmVm.fromVgic(this.gic);
    if (token === 'gic') return this.kvm.gicDevice as KvmDevice;
    const m = /^its(\d+)$/.exec(token ?? '');
    if (m !== null && Number(m[1]) < this.kvm.itsDevs.length) return this.kvm.itsDevs[Number(m[1])];
    throw new QtestError(`DEV must be gic or its0..its${this.kvm.itsDevs.length - 1}, got '${token ?? ''}'`);
  }

  private kvmGroup(token: string | undefined): number {
    const name = (token ?? '').toUpperCase().replace(/^KVM_DEV_ARM_VGIC_GRP_/, '');
    if (name in KVM_GROUPS) return KVM_GROUPS[name];
    return parseSmall(token, 'GROUP', 0xffffffff);
  }

  /** Executes one line and returns the answer line(s) (without trailing newline), or '' for a blank line. */
  execute(line: string): string {
    const words = line.trim().split(/\s+/);
    if (words[0] === '' || words[0].startsWith('#')) return '';
    try {
      return this.run(words);
    } catch (e) {
      if (e instanceof QtestError || e instanceof VgicError) return `ERR ${e.message}`;
      return `ERR internal error: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  private vcpu(token: string | undefined) {
    return this.gic.vcpu(parseSmall(token, 'CPU', this.gic.nVcpus - 1));
  }

  private address(token: string | undefined, size: number): number {
    const a = parseNum(token, 'ADDR');
    if (a > ADDR_MAX) throw new QtestError(`ADDR ${token} does not fit in 64 bits`);
    // Beyond 2^53 nothing is mapped: report it as an access to nothing rather than lose precision.
    if (a + BigInt(size) > BigInt(Number.MAX_SAFE_INTEGER)) return -1;
    return Number(a);
  }

  private run(w: string[]): string {
    const cmd = w[0].toLowerCase();
    const gic = this.gic;
    const rw = /^(read|write)([bwlq])$/.exec(cmd);
    if (rw) {
      const size = WIDTH[rw[2]];
      const addr = this.address(w[1], size);
      const cpu = gic.vcpu(this.cpu);
      if (rw[1] === 'read') {
        if (w.length !== 2) throw new QtestError(`usage: ${cmd} ADDR`);
        if (addr < 0) return `OK ${hex16(0n)}`;
        if (size === 8) return `OK ${hex16(cpu.readq(addr))}`;
        return `OK ${hex16(BigInt(cpu.mmioRead(addr, size)))}`;
      }
      if (w.length !== 3) throw new QtestError(`usage: ${cmd} ADDR VALUE`);
      const value = parseNum(w[2], 'VALUE');
      if (value >= 1n << BigInt(8 * size))
        throw new QtestError(`VALUE ${w[2]} does not fit in ${8 * size} bits`);
      if (addr >= 0) {
        if (size === 8) cpu.writeq(addr, value);
        else cpu.mmioWrite(addr, size, Number(value));
      }
      return 'OK';
    }
    switch (cmd) {
      case 'sysreg_read': {
        if (w.length !== 3) throw new QtestError('usage: sysreg_read CPU NAME');
        const cpu = this.vcpu(w[1]);
        return `OK ${hex16(cpu.readSysreg64(this.sysreg(w[2])))}`;
      }
      case 'sysreg_write': {
        if (w.length !== 4) throw new QtestError('usage: sysreg_write CPU NAME VALUE');
        const cpu = this.vcpu(w[1]);
        const enc = this.sysreg(w[2]);
        const value = parseNum(w[3], 'VALUE');
        if (value > ADDR_MAX) throw new QtestError(`VALUE ${w[3]} does not fit in 64 bits`);
        cpu.writeSysreg64(enc, value);
        return 'OK';
      }
      case 'irq_line': {
        if (w.length !== 3) throw new QtestError('usage: irq_line INTID LEVEL');
        gic.irqLine(parseSmall(w[1], 'INTID', 0xffffffff), this.level(w[2]));
        return 'OK';
      }
      case 'ppi_line': {
        if (w.length !== 4) throw new QtestError('usage: ppi_line CPU INTID LEVEL');
        const cpu = parseSmall(w[1], 'CPU', gic.nVcpus - 1);
        gic.ppiLine(cpu, parseSmall(w[2], 'INTID', 0xffffffff), this.level(w[3]));
        return 'OK';
      }
      case 'cpu': {
        if (w.length !== 2) throw new QtestError('usage: cpu N');
        this.cpu = parseSmall(w[1], 'CPU', gic.nVcpus - 1);
        return 'OK';
      }
      case 'wfi': {
        if (w.length < 2 || w.length > 3) throw new QtestError('usage: wfi CPU [TIMEOUT_MS]');
        const cpu = this.vcpu(w[1]);
        const timeout = w[2] === undefined ? 0 : parseSmall(w[2], 'TIMEOUT_MS', 60_000);
        return `OK ${cpu.wfi(timeout)}`;
      }
      case 'online': {
        if (w.length < 2 || w.length > 3) throw new QtestError('usage: online CPU [0|1]');
        const cpu = this.vcpu(w[1]);
        if (w[2] !== undefined) cpu.setOnline(this.level(w[2]));
        return `OK ${cpu.online ? 1 : 0}`;
      }
      case 'msi': {
        if (w.length !== 4) throw new QtestError('usage: msi DOORBELL DEVID EVENTID');
        const doorbell = this.address(w[1], 4);
        const devid = parseSmall(w[2], 'DEVID', 0xffffffff);
        const eventid = parseSmall(w[3], 'EVENTID', 0xffffffff);
        return `OK ${gic.signalMsi({ doorbell, devid, eventid })}`;
      }
      case 'kvm_set_attr':
      case 'kvm_get_attr':
      case 'kvm_has_attr': {
        const has = cmd === 'kvm_has_attr';
        if (w.length < 4 || w.length > (has ? 4 : 5)) {
          throw new QtestError(`usage: ${cmd} DEV GROUP ATTR${has ? '' : ' [VALUE]'}`);
        }
        const dev = this.kvmDevice(w[1]);
        const group = this.kvmGroup(w[2]);
        const attr = parseNum(w[3], 'ATTR');
        const value = w[4] === undefined ? 0n : parseNum(w[4], 'VALUE');
        if (attr > ADDR_MAX || value > ADDR_MAX) throw new QtestError('ATTR and VALUE are 64-bit');
        if (has) return `OK ${dev.hasAttr(group, attr) ? 1 : 0}`;
        if (cmd === 'kvm_get_attr') return `OK ${hex16(dev.getAttr(group, attr, value))}`;
        dev.setAttr(group, attr, value);
        return 'OK';
      }
      case 'its_errors': {
        if (w.length !== 2) throw new QtestError('usage: its_errors ITS');
        if (gic.nIts === 0) throw new QtestError('this GIC has no ITS (start qtest with --its N)');
        return `OK ${itsCounters(gic, parseSmall(w[1], 'ITS', gic.nIts - 1))}`;
      }
      case 'clock_step': {
        if (w.length !== 2) throw new QtestError('usage: clock_step TICKS');
        gic.advanceTime(parseSmall(w[1], 'TICKS', Number.MAX_SAFE_INTEGER));
        return `OK ${hex16(gic.counter64())}`;
      }
      case 'clock_read':
        return `OK ${hex16(gic.counter64())}`;
      case 'stats':
        return `OK ${JSON.stringify(gic.stats())}`;
      case 'dump': {
        if (w.length > 2 || (w.length === 2 && w[1] !== 'json')) throw new QtestError('usage: dump [json]');
        if (w.length === 2) return `OK ${JSON.stringify(gic.dumpState())}`;
        return gic
          .dumpStateText()
          .trimEnd()
          .split('\n')
          .map((l) => `# ${l}`)
          .join('\n')
          .concat('\nOK');
      }
      case 'explain': {
        if (w.length < 2 || w.length > 3) throw new QtestError('usage: explain INTID [CPU]');
        const intid = parseSmall(w[1], 'INTID', 0xffffff);
        const cpu = w[2] === undefined ? undefined : parseSmall(w[2], 'CPU', gic.nVcpus - 1);
        const r = gic.explain(intid, cpu);
        return `OK ${r.signalled ? 'signalled' : 'blocked'} ${r.reason}`;
      }
      case 'help':
        return HELP.map((h) => `# ${h}`)
          .join('\n')
          .concat('\nOK');
      case 'quit':
        this.done = true;
        return 'OK';
      default:
        throw new QtestError(`unknown command '${w[0]}' (try 'help')`);
    }
  }

  private sysreg(name: string): number {
    const enc = parseSysreg(name);
    if (enc < 0)
      throw new QtestError(
        `unknown system register '${name}': use a name like ICC_IAR1_EL1 or s3_0_c12_c12_0`,
      );
    return enc;
  }

  private level(token: string | undefined): boolean {
    const v = parseNum(token, 'LEVEL');
    if (v > 1n) throw new QtestError(`LEVEL must be 0 or 1, got ${token}`);
    return v === 1n;
  }
}

/** Runs a session over text streams until `quit` or end of input. */
export async function runQtest(
  gic: Vgic,
  input: AsyncIterable<string>,
  write: (text: string) => void,
): Promise<void> {
  const session = new QtestSession(gic);
  for await (const line of input) {
    const answer = session.execute(line);
    if (answer !== '') write(`${answer}\n`);
    if (session.done) break;
  }
}
