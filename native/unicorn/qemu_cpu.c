/* See qemu_cpu.h: QEMU's exception entry, interrupt inputs and address translation. */
#define _GNU_SOURCE
#include "qemu_cpu.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef void *(*get_cpu_fn)(uc_engine *, int);
typedef void (*cs_fn)(void *);
typedef void (*cs_mask_fn)(void *, int);
typedef uint64_t (*phys_fn)(void *, uint64_t, void *);
typedef uint64_t (*ram_addr_fn)(uc_engine *, void *);
typedef void (*inval_fn)(uc_engine *, uint64_t, uint64_t);

static get_cpu_fn p_get_cpu;
static cs_fn p_do_interrupt;
static cs_fn p_cpu_exit;
static cs_mask_fn p_reset_interrupt;
static cs_mask_fn *p_interrupt_handler; /* a data symbol: QEMU's cpu_interrupt goes through it */
static phys_fn p_phys;
static ram_addr_fn p_ram_addr;
static inval_fn p_invalidate;
static void (*p_flush_page)(void *, uint64_t);
static void (*p_define_reg)(void *, const void *, void *);

int qcpu_init(char *missing, size_t len) {
  if (p_get_cpu) return 0;
  missing[0] = 0;
  /* The addon links libunicorn, so it is loaded already; RTLD_NOLOAD only finds that copy. */
  void *h = dlopen("libunicorn.so.2", RTLD_NOW | RTLD_NOLOAD);
  if (!h) {
    snprintf(missing, len, "libunicorn.so.2 (%s)", dlerror());
    return -1;
  }
  struct {
    const char *name;
    void **slot;
  } want[] = {
      {"qemu_get_cpu_aarch64", (void **)&p_get_cpu},
      {"arm_cpu_do_interrupt_aarch64", (void **)&p_do_interrupt},
      {"cpu_exit", (void **)&p_cpu_exit},
      {"cpu_reset_interrupt", (void **)&p_reset_interrupt},
      {"cpu_interrupt_handler", (void **)&p_interrupt_handler},
      {"arm_cpu_get_phys_page_attrs_debug_aarch64", (void **)&p_phys},
      {"qemu_ram_addr_from_host_aarch64", (void **)&p_ram_addr},
      {"tb_invalidate_phys_range_aarch64", (void **)&p_invalidate},
      {"tlb_flush_page_aarch64", (void **)&p_flush_page},
      {"define_one_arm_cp_reg_with_opaque_aarch64", (void **)&p_define_reg},
  };
  int bad = 0;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    *want[i].slot = dlsym(h, want[i].name);
    if (!*want[i].slot) {
      size_t used = strlen(missing);
      snprintf(missing + used, len - used, "%s%s", bad ? ", " : "", want[i].name);
      bad = 1;
    }
  }
  if (bad) {
    p_get_cpu = NULL;
    return -1;
  }
  return 0;
}

/* Unicorn leaves cpu_index unassigned (-1) where QEMU numbers CPUs from 0: accept either. */
void *qcpu_get(uc_engine *uc) {
  void *cs = p_get_cpu(uc, 0);
  return cs ? cs : p_get_cpu(uc, -1);
}

void qcpu_do_interrupt(void *cs) { p_do_interrupt(cs); }

void qcpu_set_inputs(void *cs, int mask, int running) {
  if (mask) (*p_interrupt_handler)(cs, mask);
  /* Chained blocks never return to the loop that samples interrupt_request: ask them to. */
  if (running) p_cpu_exit(cs);
}

void qcpu_clear_inputs(void *cs, int mask) { p_reset_interrupt(cs, mask); }

uint64_t qcpu_virt_to_phys(void *cs, uint64_t va) {
  uint64_t attrs = 0; /* MemTxAttrs: a 32-bit bitfield struct in QEMU 5 */
  uint64_t page = va & ~0xfffull;
  uint64_t pa = p_phys(cs, page, &attrs);
  if (pa == (uint64_t)-1) return pa;
  return (pa & ~0xfffull) | (va & 0xfff);
}

void qcpu_invalidate_code(uc_engine *uc, void *host_page) {
  uint64_t ra = p_ram_addr(uc, host_page);
  if (ra == (uint64_t)-1) return; /* RAM_ADDR_INVALID: not guest RAM of this instance */
  p_invalidate(uc, ra, ra + 4096);
}

void qcpu_invalidate_code_range(uc_engine *uc, void *host, uint64_t len) {
  uint64_t ra = p_ram_addr(uc, host);
  if (ra == (uint64_t)-1) return;
  p_invalidate(uc, ra, ra + len);
}

void qcpu_flush_tlb_page(void *cs, uint64_t va) { p_flush_page(cs, va); }

/*
 * QEMU 5.0's ARMCPRegInfo as libunicorn 2.1 compiles it (unicorn's qemu/target/arm/cpu.h, checked
 * against the debian/2.1.1 sources): the one private layout this module depends on. Unicorn 2.1
 * keeps two extra function pointers at the end (orig_readfn/orig_writefn, for its own CP hooks).
 */
typedef struct QArmCpReg QArmCpReg;
struct QArmCpReg {
  const char *name;
  uint8_t cp, crn, crm, opc0, opc1, opc2;
  int state;
  int type;
  int access;
  int secure;
  void *opaque;
  uint64_t resetvalue;
  ptrdiff_t fieldoffset;
  ptrdiff_t bank_fieldoffsets[2];
  void *accessfn;
  uint64_t (*readfn)(void *env, const QArmCpReg *ri);
  void (*writefn)(void *env, const QArmCpReg *ri, uint64_t value);
  void *raw_readfn;
  void *raw_writefn;
  void *resetfn;
  void *orig_readfn;
  void *orig_writefn;
};

#define Q_ARM_CP_STATE_AA64 1
#define Q_ARM_CP_IO 0x0040     /* side effects: not a plain field */
#define Q_ARM_CP_NO_RAW 0x0080 /* no raw (migration) access */
#define Q_PL1_RW 0xfc          /* PL1_R | PL1_W with the higher ELs they imply */

/* Per defined register: the machine's callbacks (QEMU copies the reginfo, opaque included). */
typedef struct {
  void *opaque;
  qcpu_sysreg_read read;
  qcpu_sysreg_write write;
} SysregCb;

static uint32_t enc_of(const QArmCpReg *ri) {
  return ((uint32_t)ri->opc0 << 14) | ((uint32_t)ri->opc1 << 11) | ((uint32_t)ri->crn << 7) |
         ((uint32_t)ri->crm << 3) | ri->opc2;
}

static uint64_t cp_read(void *env, const QArmCpReg *ri) {
  const SysregCb *cb = ri->opaque;
  return cb->read(cb->opaque, enc_of(ri));
}

static void cp_write(void *env, const QArmCpReg *ri, uint64_t value) {
  const SysregCb *cb = ri->opaque;
  cb->write(cb->opaque, enc_of(ri), value);
}

int qcpu_define_sysreg(void *cs, uint32_t enc, void *opaque, qcpu_sysreg_read read, qcpu_sysreg_write write) {
  /* Lives as long as the process: QEMU keeps a pointer to it in its copy of the reginfo. */
  SysregCb *cb = calloc(1, sizeof *cb);
  if (!cb) return -1;
  cb->opaque = opaque;
  cb->read = read;
  cb->write = write;
  QArmCpReg r;
  memset(&r, 0, sizeof r);
  r.name = "vgic-icc";
  r.opc0 = (enc >> 14) & 3;
  r.opc1 = (enc >> 11) & 7;
  r.crn = (enc >> 7) & 15;
  r.crm = (enc >> 3) & 15;
  r.opc2 = enc & 7;
  if (r.opc1 != 0) {
    free(cb);
    return -1; /* only EL1 registers (op1 0): PL1_RW must not be laxer than the encoding */
  }
  r.state = Q_ARM_CP_STATE_AA64;
  r.type = Q_ARM_CP_IO | Q_ARM_CP_NO_RAW;
  r.access = Q_PL1_RW;
  r.readfn = cp_read;
  r.writefn = cp_write;
  p_define_reg(cs, &r, cb);
  return 0;
}
