/*
 * vgic_unicorn: the AArch64 CPU of vgic's machine, an N-API binding of libunicorn 2.1 (Debian 13's
 * libunicorn-dev; on Debian 12 scripts/install-system-deps.sh takes it from trixie).
 *
 * Unicorn runs guest code; everything a GIC-bearing board adds is routed out to JavaScript through
 * one handler per machine and one shared exit record (`io`, a Uint32Array): MMIO to the mapped
 * frames, trapped MRS/MSR (ICC_*, CNT*), PSCI calls (HVC), semihosting (HLT #0xF000), accesses to
 * unmapped addresses. Every other guest exception (page faults of the guest's own tables, SVC,
 * BRK, UNDEF, EL0 faults) is entered by QEMU's own code (qemu_cpu.c), with the syndrome QEMU
 * computed. The CPU interface's output is a word in `io` that JavaScript sets after every exit;
 * it drives the CPU's IRQ/FIQ inputs, and QEMU takes the exception when PSTATE allows, as hardware.
 * TLB and instruction-cache maintenance broadcast by one CPU (TLBI ...IS, IC IALLUIS, IC IVAU) is
 * recorded in a word array shared by a machine's CPUs and applied to each before it next runs.
 *
 * Who may call: the thread that created the CPU, and only that one (Unicorn's TCG is not
 * thread-safe, and its atomics are not atomic across threads: every vCPU of a machine runs
 * round-robin on one thread). The handler runs synchronously inside run().
 */

#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unicorn/unicorn.h>

#include "qemu_cpu.h"

/* Exit record layout (io words), shared with src/machine/cpu.ts. */
enum {
  IO_KIND = 0,   /* what the handler is asked to do (EXIT_*) */
  IO_CPU,        /* the CPU's index */
  IO_ID,         /* MMIO region id, sysreg encoding, exception number, or access type */
  IO_ADDR_LO,    /* MMIO offset in its region, or fault address */
  IO_ADDR_HI,
  IO_SIZE,       /* access size in bytes */
  IO_VAL_LO,     /* value written / value read (the handler writes it) */
  IO_VAL_HI,
  IO_PC_LO,      /* PC of the exit (exceptions, unmapped accesses) */
  IO_PC_HI,
  IO_STOP,       /* handler -> native: non-zero ends the run after this exit */
  IO_LINE,       /* handler -> native: 0 none, 1 vIRQ, 2 vFIQ (the CPU interface's output) */
  IO_INSN,       /* the instruction word at PC for exceptions, when readable */
  IO_ERR,        /* uc_err of the last run */
  IO_BLOCKS_LO,  /* blocks executed by the last run */
  IO_BLOCKS_HI,
  IO_EXCEPTIONS, /* synchronous exceptions QEMU entered in the last run */
  IO_CLAMP,      /* handler -> native: end this run within this many more blocks (0: no change) */
  IO_DEADLINE_US,/* JS -> native, before run: host microseconds after which the run ends (0: none) */
  IO_TLB_FLUSHES,/* TLB flushes another CPU's broadcast maintenance caused, at the last run's start */
  IO_TB_FLUSHES, /* translated-code flushes likewise */
  IO_SPIN_LIMIT, /* JS -> native, before run: end the run after this many iterations of a loop of
                    at most 4 blocks (a CPU spinning on a lock another CPU holds); 0: never */
  IO_SPINS,      /* runs ended that way (running count) */
  IO_CODE_PAGES, /* pages of translated code dropped for another CPU's IC IVAU (running count) */
  IO_TLB_PAGES,  /* TLB pages dropped for another CPU's TLBI VA*IS (running count) */
  IO_WORDS = 32
};

enum { EXIT_MMIO_READ = 1, EXIT_MMIO_WRITE, EXIT_MRS, EXIT_MSR, EXIT_EXCEPTION, EXIT_UNMAPPED, EXIT_ESCAPED };

/*
 * The array shared by a machine's CPUs. SYNC_TLB / SYNC_TB: bit k asks CPU k to flush its whole
 * TLB / translated code before it next runs. Then per CPU k (up to SYNC_CPUS) two lists: guest
 * physical pages (PA >> 12) whose translated code it must drop (another CPU's IC IVAU), and
 * virtual pages (two words each) it must drop from its TLB (another CPU's TLBI VA*IS). A list
 * that fills up becomes a whole flush. Whole flushes are what the lists avoid: each costs the
 * CPU all its translated code, or a memset of QEMU's TLB tables, which grow to megabytes
 * (measured: a quarter of an SMP boot's host time before the lists).
 */
enum { SYNC_TLB = 0, SYNC_TB, SYNC_LISTS, SYNC_CPUS = 8, SYNC_CODE_WORDS = 32, SYNC_VA_WORDS = 64 };
#define SYNC_LIST_WORDS (SYNC_CODE_WORDS + SYNC_VA_WORDS)
#define SYNC_WORDS (SYNC_LISTS + SYNC_CPUS * SYNC_LIST_WORDS)

/* run() results. */
enum { RUN_BUDGET = 0, RUN_STOPPED, RUN_HALTED, RUN_UC_ERROR, RUN_THROWN };

/* Register ids of getReg/setReg (not Unicorn's enum: stable across versions). */
enum {
  R_X0 = 0, R_SP = 31, R_PC, R_PSTATE, R_ELR_EL1, R_SPSR_EL1, R_ESR_EL1, R_FAR_EL1, R_VBAR_EL1,
  R_SP_EL0, R_SP_EL1, R_SCTLR_EL1, R_TCR_EL1, R_TTBR0_EL1, R_MAIR_EL1, R_COUNT
};

#define MAX_REGIONS 16
#define SYSREG_SPACE 65536

typedef struct Cpu Cpu;
typedef struct {
  Cpu *cpu;
  uint32_t id;
} Region;

struct Cpu {
  uc_engine *uc;
  napi_env env;
  napi_ref handler;
  napi_value fn;   /* the handler and its receiver, valid during run() */
  napi_value recv;
  napi_ref ioRef;
  napi_ref ramRefs[8];
  struct {
    uint64_t base, len;
    uint8_t *host;
  } ram[8];
  uint32_t nram;
  uint32_t *io;
  uint32_t index;
  uint64_t mpidr;
  int no_gic_sysregs;   /* a GICv2 board: ID_AA64PFR0_EL1.GIC reads 0 (setGicSysregs) */
  uint64_t blocks;
  uint64_t budget;
  uint32_t exceptions;
  void *cs;             /* QEMU's CPUState (qemu_cpu.h) */
  uint32_t line_applied; /* the IO_LINE value the CPU's inputs reflect */
  int running;          /* inside uc_emu_start */
  int kick_pending;     /* the inputs rose during this run: leave chained blocks (hook_block) */
  uint64_t recent[4];   /* the last block addresses, for spin detection */
  uint32_t spin;        /* consecutive blocks that repeat one of the last four */
  uint32_t spin_limit;
  uint64_t dbg[64];     /* DBGBVR/BCR/WVR/WCR<n>_EL1, stored only (see sys_access) */
  uint32_t *sync;       /* SYNC_* words shared by the machine's CPUs */
  napi_ref syncRef;
  struct timespec t0;   /* run start, for IO_DEADLINE_US */
  uint64_t deadline_ns;
  int stopped;   /* a run-ending request was made during this run */
  int stop_pending; /* the handler asked to end the run: done at the next block */
  int thrown;    /* the handler threw: the exception is pending in env */
  int closed;
  Region regions[MAX_REGIONS];
  uint32_t nregions;
  uc_hook hooks[8];
  uint8_t trap[SYSREG_SPACE / 8];     /* encodings routed to the handler */
  uint8_t advance[SYSREG_SPACE / 8];  /* ...that Unicorn does not implement: the hook steps PC */
};

#define MPIDR_ENC ((3u << 14) | (0u << 11) | (0u << 7) | (0u << 3) | 5u)
/* ID_AA64PFR0_EL1; with the low 5 bits free, the block 3,0,0,4..7,x of ID registers. */
#define ID_AA64PFR0_ENC ((3u << 14) | (0u << 11) | (0u << 7) | (4u << 3) | 0u)

static int bit(const uint8_t *map, uint32_t i) { return (map[i >> 3] >> (i & 7)) & 1; }

static void cp_access(uc_engine *uc, int write, uint32_t op0, uint32_t op1, uint32_t crn, uint32_t crm,
                      uint32_t op2, uint64_t *value) {
  uc_arm64_cp_reg r = {.crn = crn, .crm = crm, .op0 = op0, .op1 = op1, .op2 = op2, .val = *value};
  if (write) {
    uc_reg_write(uc, UC_ARM64_REG_CP_REG, &r);
  } else {
    uc_reg_read(uc, UC_ARM64_REG_CP_REG, &r);
    *value = r.val;
  }
}

static int reg_access(Cpu *c, int write, uint32_t id, uint64_t *v) {
  uc_engine *uc = c->uc;
  int ucid = -1;
  if (id < 29) ucid = UC_ARM64_REG_X0 + (int)id;
  else if (id == 29) ucid = UC_ARM64_REG_X29;
  else if (id == 30) ucid = UC_ARM64_REG_X30;
  else switch (id) {
    case R_SP: ucid = UC_ARM64_REG_SP; break;
    case R_PC: ucid = UC_ARM64_REG_PC; break;
    case R_PSTATE: ucid = UC_ARM64_REG_PSTATE; break;
    case R_ELR_EL1: ucid = UC_ARM64_REG_ELR_EL1; break;
    case R_ESR_EL1: ucid = UC_ARM64_REG_ESR_EL1; break;
    case R_FAR_EL1: ucid = UC_ARM64_REG_FAR_EL1; break;
    case R_VBAR_EL1: ucid = UC_ARM64_REG_VBAR_EL1; break;
    case R_SP_EL0: ucid = UC_ARM64_REG_SP_EL0; break;
    case R_SP_EL1: ucid = UC_ARM64_REG_SP_EL1; break;
    case R_TTBR0_EL1: ucid = UC_ARM64_REG_TTBR0_EL1; break;
    case R_MAIR_EL1: ucid = UC_ARM64_REG_MAIR_EL1; break;
    case R_SPSR_EL1: cp_access(uc, write, 3, 0, 4, 0, 0, v); return 1;
    case R_SCTLR_EL1: cp_access(uc, write, 3, 0, 1, 0, 0, v); return 1;
    case R_TCR_EL1: cp_access(uc, write, 3, 0, 2, 0, 2, v); return 1;
    default: return 0;
  }
  if (write) uc_reg_write(uc, ucid, v);
  else uc_reg_read(uc, ucid, v);
  return 1;
}

/*
 * Exception entry to EL1 by hand (Arm ARM D1.10), only for what QEMU cannot raise itself here: an
 * external abort on an address with nothing mapped (Unicorn stops emulation instead). ELR, SPSR,
 * ESR, FAR, PSTATE = DAIF masked at EL1h, PC = VBAR_EL1 + the vector and the SP in use. Writing
 * PSTATE neither banks SP nor rebuilds QEMU's cached translation flags: SP is swapped here, and a
 * system-register write through Unicorn (which calls arm_rebuild_hflags) refreshes the flags.
 */
static void enter_exception(Cpu *c, uint32_t kind, uint64_t elr, int syndrome, uint64_t esr, uint64_t far) {
  uc_engine *uc = c->uc;
  uint64_t pstate = 0, vbar = 0, sp = 0, spel1 = 0;
  uc_reg_read(uc, UC_ARM64_REG_PSTATE, &pstate);
  uc_reg_read(uc, UC_ARM64_REG_VBAR_EL1, &vbar);
  uint32_t el = (pstate >> 2) & 3;
  uint32_t spsel = pstate & 1;
  uint64_t offset = kind * 0x80 + (el == 0 ? 0x400 : spsel ? 0x200 : 0);
  if (el == 0 || spsel == 0) {
    uc_reg_read(uc, UC_ARM64_REG_SP, &sp);
    uc_reg_write(uc, UC_ARM64_REG_SP_EL0, &sp);
    uc_reg_read(uc, UC_ARM64_REG_SP_EL1, &spel1);
    uc_reg_write(uc, UC_ARM64_REG_SP, &spel1);
  }
  uc_reg_write(uc, UC_ARM64_REG_ELR_EL1, &elr);
  cp_access(uc, 1, 3, 0, 4, 0, 0, &pstate);
  if (syndrome) {
    uc_reg_write(uc, UC_ARM64_REG_ESR_EL1, &esr);
    uc_reg_write(uc, UC_ARM64_REG_FAR_EL1, &far);
  }
  uint64_t np = (pstate & 0xf0000000ull) | 0x3c5;
  uc_reg_write(uc, UC_ARM64_REG_PSTATE, &np);
  cp_access(uc, 1, 3, 0, 12, 0, 0, &vbar);
  uint64_t pc = vbar + offset;
  uc_reg_write(uc, UC_ARM64_REG_PC, &pc);
}

/* Makes the CPU's IRQ/FIQ inputs follow IO_LINE (0 none, 1 IRQ, 2 FIQ). */
static void sync_line(Cpu *c) {
  uint32_t line = c->io[IO_LINE];
  if (line == c->line_applied) return;
  int had = c->line_applied == 1 ? QCPU_INTERRUPT_HARD : c->line_applied == 2 ? QCPU_INTERRUPT_FIQ : 0;
  int want = line == 1 ? QCPU_INTERRUPT_HARD : line == 2 ? QCPU_INTERRUPT_FIQ : 0;
  if (had) qcpu_clear_inputs(c->cs, had);
  if (want) {
    qcpu_set_inputs(c->cs, want, 0);
    /*
     * Chained blocks never return to the loop that samples the inputs, so a running CPU is asked
     * to leave them; not from here (inside an MMIO or MRS/MSR callback that corrupts the access
     * under way, seen on a 64-bit GICD_IROUTER store) but from the next block hook.
     */
    if (c->running) c->kick_pending = 1;
  }
  c->line_applied = want ? line : 0;
}

/* Calls the JS handler for the exit described in io; 0 if it threw (emulation then stops). */
static int call_handler(Cpu *c) {
  napi_env env = c->env;
  napi_handle_scope scope;
  napi_value result;
  if (c->thrown) return 0;
  napi_open_handle_scope(env, &scope);
  /* fn and recv were looked up once by run(): they live in its handle scope. */
  napi_status st = napi_call_function(env, c->recv, c->fn, 0, NULL, &result);
  napi_close_handle_scope(env, scope);
  if (st != napi_ok) {
    c->thrown = 1;
    uc_emu_stop(c->uc);
    return 0;
  }
  /*
   * Stopping inside an MMIO or MRS/MSR callback makes Unicorn restart the instruction (a store
   * would happen twice, and a store that asks to stop would loop forever): the run ends at the
   * next block boundary instead.
   */
  if (c->io[IO_STOP]) c->stop_pending = 1;
  uint32_t clamp = c->io[IO_CLAMP];
  if (clamp) {
    /* A CPU that this exit kicked waits for this one's slice: shorten it, as a kick would. */
    if (c->budget > c->blocks + clamp) c->budget = c->blocks + clamp;
    c->io[IO_CLAMP] = 0;
  }
  sync_line(c);
  return 1;
}

static void set_pc_io(Cpu *c, uint64_t pc) {
  c->io[IO_PC_LO] = (uint32_t)pc;
  c->io[IO_PC_HI] = (uint32_t)(pc >> 32);
}

static uint64_t mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *user) {
  Region *r = user;
  Cpu *c = r->cpu;
  uint32_t *io = c->io;
  io[IO_KIND] = EXIT_MMIO_READ;
  io[IO_ID] = r->id;
  io[IO_ADDR_LO] = (uint32_t)offset;
  io[IO_ADDR_HI] = (uint32_t)(offset >> 32);
  io[IO_SIZE] = size;
  io[IO_VAL_LO] = 0;
  io[IO_VAL_HI] = 0;
  call_handler(c);
  return ((uint64_t)io[IO_VAL_HI] << 32) | io[IO_VAL_LO];
}

static void mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *user) {
  Region *r = user;
  Cpu *c = r->cpu;
  uint32_t *io = c->io;
  io[IO_KIND] = EXIT_MMIO_WRITE;
  io[IO_ID] = r->id;
  io[IO_ADDR_LO] = (uint32_t)offset;
  io[IO_ADDR_HI] = (uint32_t)(offset >> 32);
  io[IO_SIZE] = size;
  io[IO_VAL_LO] = (uint32_t)value;
  io[IO_VAL_HI] = (uint32_t)(value >> 32);
  call_handler(c);
}

/*
 * The ID registers the guest sees (ID_AA64PFR0/PFR1/ZFR0/SMFR0/DFR0/ISAR0/MMFR1_EL1, 3,0,0,4..7,x):
 * what this board can honour, as QEMU's virt without EL2/EL3 does. Unicorn's CPU has no GIC (the
 * system-register interface is vgic's: GIC = 1); its SVE state is uninitialised and every SVE
 * access traps to EL3 (hidden, so no kernel argument is needed); its PMU counters count for EL2
 * only (hidden); MTE and SME have no tag storage or state here (hidden). Nothing speculates in an
 * emulator, so CSV2, CSV3 and ECBHB say so, as QEMU's `max` does (no branch-predictor or
 * branch-history mitigation). RNDR is hidden: it would seed KASLR, and on a CPU without E0PD
 * (QEMU 5.0, Unicorn's base) KASLR forces KPTI, whose ASID switch at every kernel entry flushes
 * QEMU's untagged TLB (measured: the boot's largest host cost). The guest's entropy then comes
 * from its jitter source, as on CPUs without RNDR.
 */
static int id_register(const Cpu *c, uc_engine *uc, uint32_t enc, uint64_t *v) {
  uint32_t crm = (enc >> 3) & 15, op2 = enc & 7;
  cp_access(uc, 0, 3, 0, 0, crm, op2, v);
  if (crm == 4 && op2 == 0) { /* ID_AA64PFR0_EL1; GIC [27:24] is 0 with a GICv2 (memory-mapped only) */
    *v &= ~((0xfull << 24) | (0xfull << 32) | (0xfull << 56) | (0xfull << 60));
    *v |= (c->no_gic_sysregs ? 0 : (1ull << 24)) | (1ull << 56) | (1ull << 60);
    return 1;
  }
  if (crm == 4 && op2 == 1) { /* ID_AA64PFR1_EL1: MTE [11:8], SME [27:24] */
    *v &= ~((0xfull << 8) | (0xfull << 24));
    return 1;
  }
  if (crm == 4 && (op2 == 4 || op2 == 5)) { /* ID_AA64ZFR0_EL1, ID_AA64SMFR0_EL1 */
    *v = 0;
    return 1;
  }
  if (crm == 5 && op2 == 0) { /* ID_AA64DFR0_EL1: PMUVer [11:8] */
    *v &= ~(0xfull << 8);
    return 1;
  }
  if (crm == 6 && op2 == 0) { /* ID_AA64ISAR0_EL1: RNDR [63:60] */
    *v &= ~(0xfull << 60);
    return 1;
  }
  if (crm == 7 && op2 == 1) { /* ID_AA64MMFR1_EL1: ECBHB [63:60] */
    *v = (*v & ~(0xfull << 60)) | (1ull << 60);
    return 1;
  }
  return 0;
}

static uint32_t sys_access(Cpu *c, uc_engine *uc, uc_arm64_reg rt, const uc_arm64_cp_reg *cp, int write) {
  uint32_t enc = (cp->op0 << 14) | (cp->op1 << 11) | (cp->crn << 7) | (cp->crm << 3) | cp->op2;
  enc &= 0xffff;
  if (cp->op0 == 2 && cp->op1 == 0 && cp->crn == 0 && cp->op2 >= 4) {
    /*
     * DBGBVR/DBGBCR/DBGWVR/DBGWCR<n>_EL1 (op2 4..7, n = CRm): a breakpoint QEMU inserts from
     * translated code flushes the code it is running and crashes the host process (seen: a guest
     * that enables one SIGSEGVs Node), and Unicorn compiles watchpoints out. The registers are
     * kept here, read back as written, and never reach QEMU: breakpoints and watchpoints do not fire.
     */
    uint64_t *slot = &c->dbg[(cp->op2 - 4) * 16 + cp->crm];
    if (write) {
      uint64_t v = 0;
      if (rt != UC_ARM64_REG_XZR) uc_reg_read(uc, rt, &v);
      *slot = v;
    } else if (rt != UC_ARM64_REG_XZR) {
      uc_reg_write(uc, rt, slot);
    }
    return 1;
  }
  if (!write && enc == MPIDR_ENC) {
    /* Every Unicorn instance is CPU 0: the board's MPIDR comes from here, without a JS call. */
    if (rt != UC_ARM64_REG_XZR) uc_reg_write(uc, rt, &c->mpidr);
    return 1;
  }
  if (!write && (enc & ~0x1fu) == ID_AA64PFR0_ENC) {
    uint64_t v = 0;
    if (id_register(c, uc, enc, &v)) {
      if (rt != UC_ARM64_REG_XZR) uc_reg_write(uc, rt, &v);
      return 1;
    }
  }
  if (!bit(c->trap, enc)) return 0;
  uint32_t *io = c->io;
  io[IO_KIND] = write ? EXIT_MSR : EXIT_MRS;
  io[IO_ID] = enc;
  if (write) {
    uint64_t v = 0;
    if (rt != UC_ARM64_REG_XZR) uc_reg_read(uc, rt, &v);
    io[IO_VAL_LO] = (uint32_t)v;
    io[IO_VAL_HI] = (uint32_t)(v >> 32);
  } else {
    io[IO_VAL_LO] = 0;
    io[IO_VAL_HI] = 0;
  }
  call_handler(c);
  if (!write && rt != UC_ARM64_REG_XZR) {
    uint64_t v = ((uint64_t)io[IO_VAL_HI] << 32) | io[IO_VAL_LO];
    uc_reg_write(uc, rt, &v);
  }
  if (bit(c->advance, enc)) {
    /* unicorn.md pitfall 1: a skipped register QEMU does not implement re-executes otherwise. */
    uint64_t pc = 0;
    uc_reg_read(uc, UC_ARM64_REG_PC, &pc);
    pc += 4;
    uc_reg_write(uc, UC_ARM64_REG_PC, &pc);
  }
  return 1;
}

/* A register defined with defineSysreg: QEMU's translated code calls these (qemu_cpu.c). */
static uint64_t defined_read(void *opaque, uint32_t enc) {
  Cpu *c = opaque;
  uint32_t *io = c->io;
  io[IO_KIND] = EXIT_MRS;
  io[IO_ID] = enc;
  io[IO_VAL_LO] = 0;
  io[IO_VAL_HI] = 0;
  call_handler(c);
  return ((uint64_t)io[IO_VAL_HI] << 32) | io[IO_VAL_LO];
}

static void defined_write(void *opaque, uint32_t enc, uint64_t value) {
  Cpu *c = opaque;
  uint32_t *io = c->io;
  io[IO_KIND] = EXIT_MSR;
  io[IO_ID] = enc;
  io[IO_VAL_LO] = (uint32_t)value;
  io[IO_VAL_HI] = (uint32_t)(value >> 32);
  call_handler(c);
}

static uint32_t hook_mrs(uc_engine *uc, uc_arm64_reg rt, const uc_arm64_cp_reg *cp, void *user) {
  return sys_access(user, uc, rt, cp, 0);
}

static uint32_t hook_msr(uc_engine *uc, uc_arm64_reg rt, const uc_arm64_cp_reg *cp, void *user) {
  return sys_access(user, uc, rt, cp, 1);
}

static uint64_t elapsed_ns(const Cpu *c) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)(t.tv_sec - c->t0.tv_sec) * 1000000000ull + (uint64_t)t.tv_nsec - (uint64_t)c->t0.tv_nsec;
}

/* Before every translation block: requested stops, the run's budget and its host-time deadline. */
static void hook_block(uc_engine *uc, uint64_t address, uint32_t size, void *user) {
  Cpu *c = user;
  if (c->stopped) {
    /* A stop requested in the same hook as a PC write is dropped by Unicorn: ask again. */
    uc_emu_stop(uc);
    return;
  }
  if (c->stop_pending) {
    c->stopped = 1;
    uc_emu_stop(uc);
    return;
  }
  if (c->kick_pending) {
    c->kick_pending = 0;
    qcpu_set_inputs(c->cs, 0, 1);
  }
  ++c->blocks;
  /*
   * A loop of at most four blocks that runs long is, on a round-robin SMP board, most often a
   * CPU waiting for another (spinlocks, csd_lock_wait, WFE loops: QEMU's WFE is only a hint):
   * the CPU it waits for runs only once this run ends.
   */
  if (c->spin_limit) {
    if (address == c->recent[0] || address == c->recent[1] || address == c->recent[2] || address == c->recent[3]) {
      if (++c->spin >= c->spin_limit) {
        c->spin = 0;
        c->io[IO_SPINS]++;
        c->stopped = 2;
        uc_emu_stop(uc);
        return;
      }
    } else {
      c->spin = 0;
    }
    c->recent[c->blocks & 3] = address;
  }
  /* The clock is read every 64 blocks (a vDSO call costs about 20 ns; a block about 5-50). */
  if (c->blocks >= c->budget || (c->deadline_ns && (c->blocks & 63) == 0 && elapsed_ns(c) >= c->deadline_ns)) {
    c->stopped = 2;
    uc_emu_stop(uc);
  }
}

/* The instruction word at a virtual PC (0 when it does not translate to RAM). */
static uint32_t insn_at(Cpu *c, uint64_t va) {
  uint32_t insn = 0;
  uint64_t pa = qcpu_virt_to_phys(c->cs, va);
  if (pa == (uint64_t)-1 || uc_mem_read(c->uc, pa, &insn, 4) != UC_ERR_OK) return 0;
  return insn;
}

#define HLT_SEMIHOSTING 0xd45e0000u /* HLT #0xF000 */

static void hook_intr(uc_engine *uc, uint32_t intno, void *user) {
  Cpu *c = user;
  uint64_t pc = 0;
  uc_reg_read(uc, UC_ARM64_REG_PC, &pc);
  uint32_t *io = c->io;
  /* HVC is PSCI (the board's conduit; PC is past the HVC); HLT #0xF000 is semihosting. */
  uint32_t insn = intno == QCPU_EXCP_UDEF ? insn_at(c, pc) : 0;
  if (intno == QCPU_EXCP_HVC || (intno == QCPU_EXCP_UDEF && insn == HLT_SEMIHOSTING)) {
    io[IO_KIND] = EXIT_EXCEPTION;
    io[IO_ID] = intno;
    set_pc_io(c, pc);
    io[IO_INSN] = insn;
    call_handler(c);
    return;
  }
  qcpu_do_interrupt(c->cs);
  c->exceptions++;
  uint64_t pstate = 0;
  uc_reg_read(uc, UC_ARM64_REG_PSTATE, &pstate);
  if (((pstate >> 2) & 3) >= 2) {
    /* Nothing runs at EL2/EL3 on this board: an exception routed there is the board's error. */
    io[IO_KIND] = EXIT_ESCAPED;
    io[IO_ID] = intno;
    set_pc_io(c, pc);
    call_handler(c);
    c->stopped = 1;
    uc_emu_stop(uc);
  }
}

/*
 * SYS instructions (op0 = 1): TLB and instruction-cache maintenance that the architecture
 * broadcasts to every CPU. Each Unicorn instance has its own TLB and translated code, so the
 * other CPUs are asked to flush before they next run (they do not run meanwhile: one thread runs
 * every CPU). The instruction itself is left to QEMU (return 0).
 */
static uint32_t hook_sys(uc_engine *uc, uc_arm64_reg rt, const uc_arm64_cp_reg *cp, void *user) {
  Cpu *c = user;
  if (!c->sync) return 0;
  uint32_t others = ~(1u << (c->index & 31));
  if (cp->crn == 8 && cp->crm != 7 && cp->crm != 6) {
    /*
     * TLBI: CRm 7 and 6 are the non-shareable (local) forms; the rest are IS/OS. The EL1 VA forms
     * (VAE1, VAAE1, VALE1, VAALE1: op2 odd, CRm 3 IS or 1 OS) name one page, VA[55:12] in
     * Xt[43:0]; everything else (by ASID, all, ranges, EL2) flushes the whole TLB.
     */
    uint64_t xt = 0;
    int page = cp->op1 == 0 && (cp->crm == 3 || cp->crm == 1) && (cp->op2 & 1);
    if (page && rt != UC_ARM64_REG_XZR) uc_reg_read(uc, rt, &xt);
    for (uint32_t j = 0; j < SYNC_CPUS; j++) {
      if (j == c->index) continue;
      uint32_t *list = c->sync + SYNC_LISTS + j * SYNC_LIST_WORDS + SYNC_CODE_WORDS;
      uint32_t n = list[0];
      if (!page || 1 + 2 * (n + 1) > SYNC_VA_WORDS) {
        c->sync[SYNC_TLB] |= 1u << j;
      } else {
        list[1 + 2 * n] = (uint32_t)xt;
        list[2 + 2 * n] = (uint32_t)(xt >> 32) & 0xfff;
        list[0] = n + 1;
      }
    }
  } else if (cp->crn == 7 && cp->op1 == 0 && cp->crm == 1 && cp->op2 == 0) {
    /* IC IALLUIS. */
    c->sync[SYNC_TB] |= others;
  } else if (cp->crn == 7 && cp->op1 == 3 && cp->crm == 5 && cp->op2 == 1) {
    /*
     * IC IVAU, to the point of unification: every CPU's instruction fetch. A whole flush costs the
     * other CPUs all their translated code (measured: most of an SMP boot's time, with Linux
     * patching static keys), so only the page is dropped there.
     */
    uint64_t va = 0;
    if (rt != UC_ARM64_REG_XZR) uc_reg_read(uc, rt, &va);
    uint64_t pa = qcpu_virt_to_phys(c->cs, va);
    for (uint32_t j = 0; j < SYNC_CPUS; j++) {
      if (j == c->index) continue;
      uint32_t *list = c->sync + SYNC_LISTS + j * SYNC_LIST_WORDS;
      uint32_t n = list[0];
      if (pa == (uint64_t)-1 || pa >= (1ull << 44) || n >= SYNC_CODE_WORDS - 1) {
        c->sync[SYNC_TB] |= 1u << j;
      } else if (n == 0 || list[n] != (uint32_t)(pa >> 12)) {
        list[n + 1] = (uint32_t)(pa >> 12);
        list[0] = n + 1;
      }
    }
  }
  return 0;
}

static bool hook_unmapped(uc_engine *uc, uc_mem_type type, uint64_t address, int size, int64_t value, void *user) {
  Cpu *c = user;
  uint64_t pc = 0;
  uc_reg_read(uc, UC_ARM64_REG_PC, &pc);
  uint32_t *io = c->io;
  io[IO_KIND] = EXIT_UNMAPPED;
  io[IO_ID] = (uint32_t)type;
  io[IO_ADDR_LO] = (uint32_t)address;
  io[IO_ADDR_HI] = (uint32_t)(address >> 32);
  io[IO_SIZE] = (uint32_t)size;
  io[IO_VAL_LO] = (uint32_t)value;
  io[IO_VAL_HI] = (uint32_t)((uint64_t)value >> 32);
  set_pc_io(c, pc);
  /* Recorded only: the run ends with UC_ERR_*_UNMAPPED and the host decides (abort or report). */
  return false;
}

/* ---- N-API plumbing ---- */

#define CHECK(call)                                                                            \
  do {                                                                                         \
    if ((call) != napi_ok) {                                                                   \
      napi_throw_error(env, "VGIC_NATIVE", "N-API call failed: " #call);                       \
      return NULL;                                                                             \
    }                                                                                          \
  } while (0)

static napi_value throw_uc(napi_env env, const char *what, uc_err err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, uc_strerror(err));
  napi_throw_error(env, "VGIC_UNICORN", msg);
  return NULL;
}

static void cpu_finalize(napi_env env, void *data, void *hint) {
  Cpu *c = data;
  if (!c->closed && c->uc) uc_close(c->uc);
  if (c->handler) napi_delete_reference(env, c->handler);
  if (c->ioRef) napi_delete_reference(env, c->ioRef);
  if (c->syncRef) napi_delete_reference(env, c->syncRef);
  for (uint32_t i = 0; i < c->nram; i++) napi_delete_reference(env, c->ramRefs[i]);
  free(c);
}

static Cpu *get_cpu(napi_env env, napi_value v) {
  Cpu *c = NULL;
  if (napi_get_value_external(env, v, (void **)&c) != napi_ok || c == NULL) {
    napi_throw_type_error(env, "VGIC_NATIVE", "expected a CPU handle");
    return NULL;
  }
  if (c->closed) {
    napi_throw_error(env, "VGIC_NATIVE", "the CPU is closed");
    return NULL;
  }
  return c;
}

static int get_u64(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  *out = (uint64_t)d;
  return 1;
}

static uint32_t arg_u32(napi_env env, napi_value v) {
  uint32_t x = 0;
  napi_get_value_uint32(env, v, &x);
  return x;
}

/* create(index, mpidr, handler, io: Uint32Array, sync?: Uint32Array) -> handle */
static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char missing[512];
  if (qcpu_init(missing, sizeof missing) != 0) {
    char msg[700];
    snprintf(msg, sizeof msg, "libunicorn does not export QEMU's %s: the machine needs libunicorn 2.1", missing);
    napi_throw_error(env, "VGIC_UNICORN", msg);
    return NULL;
  }
  Cpu *c = calloc(1, sizeof *c);
  if (!c) {
    napi_throw_error(env, "VGIC_NATIVE", "out of memory");
    return NULL;
  }
  c->index = arg_u32(env, argv[0]);
  get_u64(env, argv[1], &c->mpidr);
  CHECK(napi_create_reference(env, argv[2], 1, &c->handler));
  napi_typedarray_type tt;
  size_t len;
  void *data;
  napi_value ab;
  size_t off;
  CHECK(napi_get_typedarray_info(env, argv[3], &tt, &len, &data, &ab, &off));
  if (tt != napi_uint32_array || len < IO_WORDS) {
    free(c);
    napi_throw_type_error(env, "VGIC_NATIVE", "io must be a Uint32Array of at least 32 words");
    return NULL;
  }
  c->io = data;
  CHECK(napi_create_reference(env, argv[3], 1, &c->ioRef));
  if (argc >= 5) {
    napi_valuetype st;
    napi_typeof(env, argv[4], &st);
    if (st != napi_undefined) {
      CHECK(napi_get_typedarray_info(env, argv[4], &tt, &len, &data, &ab, &off));
      if (tt != napi_uint32_array || len < SYNC_WORDS) {
        napi_throw_type_error(env, "VGIC_NATIVE", "sync must be a Uint32Array of SYNC_WORDS (770) words");
        return NULL;
      }
      c->sync = data;
      CHECK(napi_create_reference(env, argv[4], 1, &c->syncRef));
    }
  }
  uc_err err = uc_open(UC_ARCH_ARM64, UC_MODE_ARM, &c->uc);
  if (err != UC_ERR_OK) {
    free(c);
    return throw_uc(env, "uc_open", err);
  }
  /* -cpu max: LSE atomics and the rest of Armv8.x that GCC may emit. */
  uc_ctl(c->uc, UC_CTL_WRITE(UC_CTL_CPU_MODEL, 1), UC_CPU_ARM64_MAX);
  /*
   * What QEMU's boot code sets for a -kernel guest, since nothing runs at EL2/EL3 here: EL1 is
   * AArch64 (SCR_EL3.RW, unicorn.md pitfall 2), HVC reaches the hook (HCE) as PSCI, SMC is
   * undefined at EL1 (SMD: no firmware, PSCI's conduit is HVC), and pointer authentication does not
   * trap to EL3 or EL2 (SCR_EL3.API/APK, HCR_EL2.API/APK).
   */
  uint64_t scr = (1ull << 17) | (1ull << 16) | (1u << 10) | (1u << 8) | (1u << 7) | 1u;
  cp_access(c->uc, 1, 3, 6, 1, 1, 0, &scr);
  /*
   * With SCR_EL3.NS set EL2 is enabled, and EL1 is AArch64 only if HCR_EL2.RW is set too: without
   * it every ERET is an illegal return (PSTATE.IL; it lands in the same mode, so a return to EL1t
   * stays at EL1h on the wrong stack).
   */
  uint64_t hcr = (1ull << 41) | (1ull << 40) | (1ull << 31);
  cp_access(c->uc, 1, 3, 4, 1, 1, 0, &hcr);
  uc_hook_add(c->uc, &c->hooks[0], UC_HOOK_BLOCK, (void *)hook_block, c, 1, 0);
  uc_hook_add(c->uc, &c->hooks[1], UC_HOOK_INSN, (void *)hook_mrs, c, 1, 0, UC_ARM64_INS_MRS);
  uc_hook_add(c->uc, &c->hooks[2], UC_HOOK_INSN, (void *)hook_msr, c, 1, 0, UC_ARM64_INS_MSR);
  uc_hook_add(c->uc, &c->hooks[3], UC_HOOK_INTR, (void *)hook_intr, c, 1, 0);
  uc_hook_add(c->uc, &c->hooks[4], UC_HOOK_MEM_UNMAPPED, (void *)hook_unmapped, c, 1, 0);
  uc_hook_add(c->uc, &c->hooks[5], UC_HOOK_INSN, (void *)hook_sys, c, 1, 0, UC_ARM64_INS_SYS);
  c->cs = qcpu_get(c->uc);
  if (!c->cs) {
    uc_close(c->uc);
    free(c);
    napi_throw_error(env, "VGIC_UNICORN", "libunicorn's CPU could not be found (qemu_get_cpu returned none)");
    return NULL;
  }
  napi_value handle;
  CHECK(napi_create_external(env, c, cpu_finalize, NULL, &handle));
  return handle;
}

/* mapRam(cpu, base, buffer: SharedArrayBuffer | ArrayBuffer) */
static napi_value js_map_ram(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uint64_t base = 0;
  get_u64(env, argv[1], &base);
  void *data = NULL;
  size_t len = 0;
  bool isab = false;
  napi_is_arraybuffer(env, argv[2], &isab);
  if (isab) {
    CHECK(napi_get_arraybuffer_info(env, argv[2], &data, &len));
  } else {
    /* A SharedArrayBuffer is not an ArrayBuffer to N-API on Node 20: take a Uint8Array over it. */
    napi_typedarray_type tt;
    napi_value ab;
    size_t off;
    bool ista = false;
    napi_is_typedarray(env, argv[2], &ista);
    if (!ista) {
      napi_throw_type_error(env, "VGIC_NATIVE", "RAM must be an ArrayBuffer or a Uint8Array");
      return NULL;
    }
    CHECK(napi_get_typedarray_info(env, argv[2], &tt, &len, &data, &ab, &off));
  }
  if (c->nram >= 8) {
    napi_throw_error(env, "VGIC_NATIVE", "at most 8 RAM regions");
    return NULL;
  }
  uc_err err = uc_mem_map_ptr(c->uc, base, len, UC_PROT_ALL, data);
  if (err != UC_ERR_OK) return throw_uc(env, "uc_mem_map_ptr", err);
  c->ram[c->nram].base = base;
  c->ram[c->nram].len = len;
  c->ram[c->nram].host = data;
  CHECK(napi_create_reference(env, argv[2], 1, &c->ramRefs[c->nram++]));
  return NULL;
}

/* mapMmio(cpu, base, size, id) */
static napi_value js_map_mmio(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uint64_t base = 0, size = 0;
  get_u64(env, argv[1], &base);
  get_u64(env, argv[2], &size);
  if (c->nregions >= MAX_REGIONS) {
    napi_throw_error(env, "VGIC_NATIVE", "at most 16 MMIO regions");
    return NULL;
  }
  Region *r = &c->regions[c->nregions++];
  r->cpu = c;
  r->id = arg_u32(env, argv[3]);
  uc_err err = uc_mmio_map(c->uc, base, size, mmio_read, r, mmio_write, r);
  if (err != UC_ERR_OK) return throw_uc(env, "uc_mmio_map", err);
  return NULL;
}

/* trapSysreg(cpu, encoding, advancePc) */
static napi_value js_trap_sysreg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uint32_t enc = arg_u32(env, argv[1]) & 0xffff;
  bool adv = false;
  napi_get_value_bool(env, argv[2], &adv);
  c->trap[enc >> 3] |= (uint8_t)(1u << (enc & 7));
  if (adv) c->advance[enc >> 3] |= (uint8_t)(1u << (enc & 7));
  else c->advance[enc >> 3] &= (uint8_t)~(1u << (enc & 7));
  return NULL;
}

/*
 * defineSysreg(cpu, encoding): an EL1 register QEMU does not implement (ICC_*), added to the CPU's
 * own register table so that an access calls the handler from translated code: no MRS/MSR hook,
 * no PC step (whose write ends the translation block and re-enters Unicorn's loop). Before the
 * CPU first runs.
 */
static napi_value js_define_sysreg(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uint32_t enc = arg_u32(env, argv[1]) & 0xffff;
  if (qcpu_define_sysreg(c->cs, enc, c, defined_read, defined_write) != 0) {
    napi_throw_range_error(env, "VGIC_NATIVE", "defineSysreg takes an EL1 register encoding (op1 0)");
    return NULL;
  }
  return NULL;
}

/* run(cpu, maxBlocks) -> RUN_* ; io gets IO_ERR and the block count */
static napi_value js_run(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  double budget = 0;
  napi_get_value_double(env, argv[1], &budget);
  c->env = env;
  CHECK(napi_get_reference_value(env, c->handler, &c->fn));
  CHECK(napi_get_undefined(env, &c->recv));
  c->blocks = 0;
  c->budget = budget < 1 ? 1 : (uint64_t)budget;
  c->stopped = 0;
  c->stop_pending = 0;
  c->thrown = 0;
  c->exceptions = 0;
  c->io[IO_STOP] = 0;
  c->io[IO_CLAMP] = 0;
  c->deadline_ns = (uint64_t)c->io[IO_DEADLINE_US] * 1000u;
  c->spin_limit = c->io[IO_SPIN_LIMIT];
  c->spin = 0;
  memset(c->recent, 0xff, sizeof c->recent);
  clock_gettime(CLOCK_MONOTONIC, &c->t0);
  uint32_t me = 1u << (c->index & 31);
  if (c->sync && (c->sync[SYNC_TLB] & me)) {
    c->sync[SYNC_TLB] &= ~me;
    uc_ctl(c->uc, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0));
    c->io[IO_TLB_FLUSHES]++;
    if (c->index < SYNC_CPUS) c->sync[SYNC_LISTS + c->index * SYNC_LIST_WORDS + SYNC_CODE_WORDS] = 0;
  }
  if (c->sync && c->index < SYNC_CPUS) {
    uint32_t *list = c->sync + SYNC_LISTS + c->index * SYNC_LIST_WORDS + SYNC_CODE_WORDS;
    for (uint32_t i = 0; i < list[0] && 2 + 2 * i < SYNC_VA_WORDS; i++) {
      uint64_t xt = ((uint64_t)list[2 + 2 * i] << 32) | list[1 + 2 * i];
      /* QEMU's pageaddr: VA[55:12] from Xt[43:0], sign-extended from bit 55. */
      uint64_t va = (uint64_t)(((int64_t)(xt << 20)) >> 8);
      qcpu_flush_tlb_page(c->cs, va);
      c->io[IO_TLB_PAGES]++;
    }
    list[0] = 0;
  }
  if (c->sync && (c->sync[SYNC_TB] & me)) {
    c->sync[SYNC_TB] &= ~me;
    /*
     * Not UC_CTL_TB_FLUSH: Unicorn 2.1.1's tb_flush (tcg_region_reset_all) memsets the whole
     * code buffer, first-touching it (measured: 3.5 s for one IC IALLUIS in guest/progs/smp_tlb).
     * All guest code is in RAM, so invalidating every RAM page's blocks drops the same code.
     */
    for (uint32_t r = 0; r < c->nram; r++) qcpu_invalidate_code_range(c->uc, c->ram[r].host, c->ram[r].len);
    c->io[IO_TB_FLUSHES]++;
    if (c->index < SYNC_CPUS) c->sync[SYNC_LISTS + c->index * SYNC_LIST_WORDS] = 0;
  }
  if (c->sync && c->index < SYNC_CPUS) {
    uint32_t *list = c->sync + SYNC_LISTS + c->index * SYNC_LIST_WORDS;
    for (uint32_t i = 1; i <= list[0] && i < SYNC_CODE_WORDS; i++) {
      uint64_t pa = (uint64_t)list[i] << 12;
      for (uint32_t r = 0; r < c->nram; r++) {
        if (pa >= c->ram[r].base && pa - c->ram[r].base < c->ram[r].len) {
          qcpu_invalidate_code(c->uc, c->ram[r].host + (pa - c->ram[r].base));
          c->io[IO_CODE_PAGES]++;
        }
      }
    }
    list[0] = 0;
  }
  sync_line(c);
  uint64_t pc = 0;
  uc_reg_read(c->uc, UC_ARM64_REG_PC, &pc);
  c->running = 1;
  uc_err err = uc_emu_start(c->uc, pc, 0, 0, 0);
  c->running = 0;
  c->io[IO_ERR] = (uint32_t)err;
  c->io[IO_BLOCKS_LO] = (uint32_t)c->blocks;
  c->io[IO_BLOCKS_HI] = (uint32_t)(c->blocks >> 32);
  c->io[IO_EXCEPTIONS] = c->exceptions;
  int result;
  if (c->thrown) result = RUN_THROWN; /* the handler's exception propagates from this call */
  else if (err != UC_ERR_OK) result = RUN_UC_ERROR;
  else if (c->stopped == 2) result = RUN_BUDGET;
  else if (c->stopped) result = RUN_STOPPED;
  else result = RUN_HALTED; /* WFI, or the CPU halted for another reason */
  if (c->thrown) return NULL;
  napi_value out;
  CHECK(napi_create_int32(env, result, &out));
  return out;
}

/* stop(cpu): ends the current run at the next opportunity (from inside the handler). */
static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  if (!c->stopped) c->stopped = 1;
  uc_emu_stop(c->uc);
  return NULL;
}

/* getReg(cpu, id) -> bigint */
static napi_value js_get_reg(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uint64_t v = 0;
  if (!reg_access(c, 0, arg_u32(env, argv[1]), &v)) {
    napi_throw_range_error(env, "VGIC_NATIVE", "unknown register id");
    return NULL;
  }
  napi_value out;
  CHECK(napi_create_bigint_uint64(env, v, &out));
  return out;
}

/* setReg(cpu, id, value: bigint | number) */
static napi_value js_set_reg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uint64_t v = 0;
  if (!get_u64(env, argv[2], &v) || !reg_access(c, 1, arg_u32(env, argv[1]), &v)) {
    napi_throw_range_error(env, "VGIC_NATIVE", "unknown register id or bad value");
    return NULL;
  }
  return NULL;
}

/* enterException(cpu, kind, elr, esr, far): synchronous exceptions and SError decided by the host. */
static napi_value js_enter_exception(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uint64_t elr = 0, esr = 0, far = 0;
  get_u64(env, argv[2], &elr);
  get_u64(env, argv[3], &esr);
  get_u64(env, argv[4], &far);
  enter_exception(c, arg_u32(env, argv[1]) & 3, elr, 1, esr, far);
  return NULL;
}

/* readMem(cpu, addr, Uint8Array) -> boolean: through Unicorn (RAM only). */
static napi_value js_read_mem(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uint64_t addr = 0;
  get_u64(env, argv[1], &addr);
  napi_typedarray_type tt;
  size_t len, off;
  void *data;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[2], &tt, &len, &data, &ab, &off));
  napi_value out;
  CHECK(napi_get_boolean(env, uc_mem_read(c->uc, addr, data, len) == UC_ERR_OK, &out));
  return out;
}

/* flushTb(cpu): drop translated code (after the host wrote guest code behind Unicorn's back). */
static napi_value js_flush_tb(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uc_ctl(c->uc, UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0));
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uc_close(c->uc);
  c->uc = NULL;
  c->closed = 1;
  return NULL;
}

static void hook_precise(uc_engine *uc, uc_mem_type type, uint64_t address, int size, int64_t value, void *user) {}

/*
 * preciseAborts(cpu, begin, end): an (empty) memory hook whose range covers [begin, end] makes
 * Unicorn keep PC exact at every load and store of code in that range, so an access to an
 * unmapped address reports the faulting instruction, not its block's start (measured: a load/store
 * loop costs about 15% more). Without it a data abort's ELR would be wrong.
 */
static napi_value js_precise_aborts(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  uint64_t b = 0, e = 0;
  get_u64(env, argv[1], &b);
  get_u64(env, argv[2], &e);
  uc_hook h;
  uc_hook_add(c->uc, &h, UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, (void *)hook_precise, c, b, e);
  return NULL;
}

/* setGicSysregs(cpu, on): whether the board's GIC has a system-register interface (GICv3). */
static napi_value js_set_gic_sysregs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Cpu *c = get_cpu(env, argv[0]);
  if (!c) return NULL;
  bool on = true;
  napi_get_value_bool(env, argv[1], &on);
  c->no_gic_sysregs = !on;
  return NULL;
}

/* selfCheck() -> null, or a message naming what this libunicorn lacks. */
static napi_value js_self_check(napi_env env, napi_callback_info info) {
  char missing[512];
  char msg[700];
  napi_value out;
  unsigned major = 0, minor = 0;
  uc_version(&major, &minor);
  if (major < 2 || (major == 2 && minor < 1)) {
    /* 2.0 looks virtual addresses up in the physical memory map (unicorn issue 1718). */
    snprintf(msg, sizeof msg, "libunicorn %u.%u is too old: the machine needs 2.1 or later", major, minor);
  } else if (qcpu_init(missing, sizeof missing) != 0) {
    snprintf(msg, sizeof msg, "libunicorn %u.%u does not export QEMU's %s", major, minor, missing);
  } else {
    CHECK(napi_get_null(env, &out));
    return out;
  }
  CHECK(napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value js_version(napi_env env, napi_callback_info info) {
  unsigned major = 0, minor = 0;
  unsigned v = uc_version(&major, &minor);
  napi_value out;
  CHECK(napi_create_uint32(env, v, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"mapRam", NULL, js_map_ram, NULL, NULL, NULL, napi_default, NULL},
      {"mapMmio", NULL, js_map_mmio, NULL, NULL, NULL, napi_default, NULL},
      {"trapSysreg", NULL, js_trap_sysreg, NULL, NULL, NULL, napi_default, NULL},
      {"defineSysreg", NULL, js_define_sysreg, NULL, NULL, NULL, napi_default, NULL},
      {"run", NULL, js_run, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, js_stop, NULL, NULL, NULL, napi_default, NULL},
      {"getReg", NULL, js_get_reg, NULL, NULL, NULL, napi_default, NULL},
      {"setReg", NULL, js_set_reg, NULL, NULL, NULL, napi_default, NULL},
      {"enterException", NULL, js_enter_exception, NULL, NULL, NULL, napi_default, NULL},
      {"readMem", NULL, js_read_mem, NULL, NULL, NULL, napi_default, NULL},
      {"flushTb", NULL, js_flush_tb, NULL, NULL, NULL, napi_default, NULL},
      {"preciseAborts", NULL, js_precise_aborts, NULL, NULL, NULL, napi_default, NULL},
      {"setGicSysregs", NULL, js_set_gic_sysregs, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"version", NULL, js_version, NULL, NULL, NULL, napi_default, NULL},
      {"selfCheck", NULL, js_self_check, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
