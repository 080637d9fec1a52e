/* See qemu_cpu.h: QEMU's exception entry, interrupt inputs and address translation. */
#define _GNU_SOURCE
#include "qemu_cpu.h"

#include <dlfcn.h>
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
