/*
 * qemu_cpu: the few QEMU functions inside libunicorn that vgic's machine calls directly, so that
 * the guest's exceptions and interrupts are entered by QEMU's own code (architectural ESR, FAR,
 * ELR, SPSR, target EL, SP selection, cached translation flags) rather than by hand.
 *
 * Unicorn's public API reports every guest exception to UC_HOOK_INTR and keeps the syndrome to
 * itself, and has no interrupt input. libunicorn 2.x exports QEMU's internals with a per-target
 * suffix (checked with `nm -D` on Debian's 2.0.1 and 2.1.1): they are looked up at load time with
 * dlsym, and qcpu_init() says which ones are missing instead of failing to load.
 *
 * Who may call: the thread that runs the CPUs (vgic_unicorn.c), after qcpu_init() returned 0.
 */
#ifndef VGIC_QEMU_CPU_H
#define VGIC_QEMU_CPU_H

#include <stddef.h>
#include <stdint.h>
#include <unicorn/unicorn.h>

/* QEMU's CPU_INTERRUPT_* bits (include/hw/core/cpu.h, target/arm/cpu.h). */
#define QCPU_INTERRUPT_HARD 0x0002
#define QCPU_INTERRUPT_FIQ 0x0010

/* QEMU's EXCP_* numbers as UC_HOOK_INTR reports them (target/arm/cpu.h). */
#define QCPU_EXCP_UDEF 1
#define QCPU_EXCP_HVC 11

/* Resolves the functions; 0 on success, else -1 with the missing names in `missing`. */
int qcpu_init(char *missing, size_t len);

/* The QEMU CPUState of a Unicorn instance (it has one CPU). */
void *qcpu_get(uc_engine *uc);

/* Enters the exception that UC_HOOK_INTR is reporting, as QEMU would (arm_cpu_do_interrupt). */
void qcpu_do_interrupt(void *cs);

/* Drives the CPU's IRQ/FIQ inputs (cpu_interrupt / cpu_reset_interrupt). `running`: the CPU is
 * inside emulation and must leave its chained translation blocks to notice the change (only
 * from a block hook: never from an MMIO or system-register callback). mask 0: only that. */
void qcpu_set_inputs(void *cs, int mask, int running);
void qcpu_clear_inputs(void *cs, int mask);

/* Translates a virtual address with the CPU's current regime; -1 when it does not translate. */
uint64_t qcpu_virt_to_phys(void *cs, uint64_t va);

/* An AArch64 system register that QEMU does not implement (the GIC CPU interface: Unicorn's CPU has
 * no GIC), defined in the CPU's register table with EL1 read/write access: QEMU's translated code
 * then calls `read`/`write` with `opaque` and the encoding (op0:op1:CRn:CRm:op2, 16 bits), without a
 * hook, a PC write or leaving the translation block. 0 on success. */
typedef uint64_t (*qcpu_sysreg_read)(void *opaque, uint32_t enc);
typedef void (*qcpu_sysreg_write)(void *opaque, uint32_t enc, uint64_t value);
int qcpu_define_sysreg(void *cs, uint32_t enc, void *opaque, qcpu_sysreg_read read, qcpu_sysreg_write write);

/* Drops one virtual page from the CPU's TLB, for every translation regime (tlb_flush_page). */
void qcpu_flush_tlb_page(void *cs, uint64_t va);

/* Drops the translated code of one guest RAM page, given by its host address (this instance's
 * RAM block offset is looked up from it: qemu_ram_addr_from_host, tb_invalidate_phys_range). */
void qcpu_invalidate_code(uc_engine *uc, void *host_page);

/* The same for len bytes of one RAM block from host: every translated block of that RAM. */
void qcpu_invalidate_code_range(uc_engine *uc, void *host, uint64_t len);

#endif
