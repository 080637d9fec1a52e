/* EL0 (EL0t) entered by ERET: SVC, UDF, a data abort on a kernel-only page, EL1-only system
 * registers, WFI trapped and not trapped (SCTLR_EL1.nTWI), and an IRQ taken from EL0 through the
 * lower-EL AArch64 vectors. Each EL0 routine ends with SVC #0xe1, which returns to EL1. */
#include "guest.h"

#define SVC_EXIT 0xe1
#define SVC_SGI  0x01     /* asks EL1 to send SGI 3 to this CPU */
#define SCTLR_UMA  (1UL << 9)
#define SCTLR_UCT  (1UL << 15)
#define SCTLR_nTWI (1UL << 16)
#define SCTLR_nTWE (1UL << 18)
#define SCTLR_SPAN (1UL << 23)
#define SPSR_EL0T_I (1UL << 7)    /* EL0t, IRQs masked */

/* EL0 code: one page of its own (EL0 read-only and executable, never executable at EL1). */
asm(".pushsection .text.el0, \"ax\"\n"
    ".balign 4096\n"
    ".global el0_page\n el0_page:\n"
    ".global el0_exit\n el0_exit: svc #0xe1\n b el0_exit\n"
    /* svc #0x42: returns the handler's x0 plus (SP after - SP before) */
    ".global el0_svc\n el0_svc: mov x1, sp\n svc #0x42\n"
    ".global el0_svc_ret\n el0_svc_ret: mov x2, sp\n sub x2, x2, x1\n add x0, x0, x2\n ret\n"
    ".global el0_udf\n el0_udf: mov x0, #1\n"
    ".global el0_udf_insn\n el0_udf_insn: udf #0x17\n add x0, x0, #1\n ret\n"
    /* x0 = address: load it */
    ".global el0_load\n el0_load: mov x1, x0\n"
    ".global el0_load_insn\n el0_load_insn: ldr x0, [x1]\n ret\n"
    ".global el0_store\n el0_store: mov x1, #0x77\n"
    ".global el0_store_insn\n el0_store_insn: str x1, [x0]\n mov x0, #0\n ret\n"
    ".global el0_mrs_sctlr\n el0_mrs_sctlr: mov x0, #0x99\n"
    ".global el0_mrs_sctlr_insn\n el0_mrs_sctlr_insn: mrs x0, sctlr_el1\n ret\n"
    ".global el0_mrs_daif\n el0_mrs_daif: mov x0, #0x99\n"
    ".global el0_mrs_daif_insn\n el0_mrs_daif_insn: mrs x0, daif\n ret\n"
    ".global el0_mrs_ctr\n el0_mrs_ctr: mov x0, #0\n"
    ".global el0_mrs_ctr_insn\n el0_mrs_ctr_insn: mrs x0, ctr_el0\n ret\n"
    ".global el0_wfi\n el0_wfi: mov x0, #0\n"
    ".global el0_wfi_insn\n el0_wfi_insn: wfi\n add x0, x0, #1\n ret\n"
    /* svc SVC_SGI, then a few instructions: the IRQ comes in at EL0 */
    ".global el0_irq\n el0_irq: mov x0, #0\n svc #0x01\n"
    ".global el0_irq_after\n el0_irq_after: add x0, x0, #1\n add x0, x0, #1\n add x0, x0, #1\n ret\n"
    ".global el0_irq_end\n el0_irq_end:\n"
    ".balign 4096\n"
    ".popsection\n");
extern char el0_page[], el0_exit[], el0_svc[], el0_svc_ret[], el0_udf[], el0_udf_insn[], el0_load[],
    el0_load_insn[], el0_store[], el0_store_insn[], el0_mrs_sctlr[], el0_mrs_sctlr_insn[], el0_mrs_daif[],
    el0_mrs_daif_insn[], el0_mrs_ctr[], el0_mrs_ctr_insn[], el0_wfi[], el0_wfi_insn[], el0_irq[], el0_irq_after[], el0_irq_end[];

/* u64 run_el0(fn, arg, sp_el0, spsr): ERET to fn(arg) at EL0 with LR = el0_exit; the SVC #0xe1
 * handler returns to el0_returned at EL1h with fn's x0. */
asm(".text\n"
    ".global run_el0\n run_el0:\n"
    " stp x29, x30, [sp, #-96]!\n stp x19, x20, [sp, #16]\n stp x21, x22, [sp, #32]\n"
    " stp x23, x24, [sp, #48]\n stp x25, x26, [sp, #64]\n stp x27, x28, [sp, #80]\n"
    " msr sp_el0, x2\n msr elr_el1, x0\n msr spsr_el1, x3\n mov x0, x1\n"
    " adrp x30, el0_exit\n add x30, x30, :lo12:el0_exit\n"
    " eret\n"
    ".global el0_returned\n el0_returned:\n"
    " ldp x19, x20, [sp, #16]\n ldp x21, x22, [sp, #32]\n ldp x23, x24, [sp, #48]\n"
    " ldp x25, x26, [sp, #64]\n ldp x27, x28, [sp, #80]\n ldp x29, x30, [sp], #96\n ret\n");
u64 run_el0(void *fn, u64 arg, u64 sp0, u64 spsr);
extern char el0_returned[];

static u8 el0_data[4096] __attribute__((aligned(4096)));    /* EL0 read/write: its stack */
static u64 kernel_page[512] __attribute__((aligned(4096)));  /* EL1 only */
#define EL0_SP ((u64)el0_data + sizeof(el0_data))

static struct {
    u64 esr, far, elr, spsr, sp_el0;
    int kind;
    u32 count;
} last;
static volatile u32 irq_count, irq_intid;
static u64 irq_elr, irq_spsr, irq_sp_el0;
static int irq_kind;

static u64 ec(void) { return (last.esr >> 26) & 0x3f; }

static void sync_handler(struct exc_frame *f, int kind)
{
    u64 esr = read_sysreg(esr_el1);
    if (((esr >> 26) & 0x3f) == 0x15 && (esr & 0xffff) == SVC_EXIT) {
        f->elr = (u64)el0_returned;
        f->spsr = 0x3c5;            /* EL1h, DAIF masked */
        return;
    }
    last.esr = esr;
    last.far = read_sysreg(far_el1);
    last.elr = f->elr;
    last.spsr = f->spsr;
    last.sp_el0 = read_sysreg(sp_el0);
    last.kind = kind;
    last.count++;
    if (((esr >> 26) & 0x3f) == 0x15) {
        if ((esr & 0xffff) == SVC_SGI)
            gic_send_sgi_self(3);
        else
            f->x[0] += 100;
        return;
    }
    f->elr += 4;    /* skip the faulting instruction */
}

static void irq_handler(struct exc_frame *f, int kind)
{
    u32 iar = icc_iar1();
    if (iar == INTID_SPURIOUS)
        return;
    irq_elr = f->elr;
    irq_spsr = f->spsr;
    irq_sp_el0 = read_sysreg(sp_el0);
    irq_kind = kind;
    irq_intid = iar;
    irq_count++;
    icc_eoir1(iar);
}

static void print_last(const char *what, const char *base_name, u64 base)
{
    printf("%s: kind=%d EC=0x%lx IL=%lu ISS=0x%lx SPSR.M=0x%lx ELR=%s+0x%lx\n", what, last.kind, ec(),
           (last.esr >> 25) & 1, last.esr & 0x1ffffff, last.spsr & 0xf, base_name, last.elr - base);
}

static void set_sctlr(u64 set, u64 clear)
{
    write_sysreg(sctlr_el1, (read_sysreg(sctlr_el1) | set) & ~clear);
    isb();
}

int main(void)
{
    u64 r;
    u32 n0;
    printf("el0: EL0t entered by ERET, exceptions from EL0\n");
    gic_dist_init();
    gic_cpu_init();
    gic_enable_irq(3);

    /* EL0 code: EL0 read-only + executable, PXN; EL0 data: read/write, never executable */
    *mmu_entry(0, (u64)el0_page, 3) = PTE_NORMAL_PAGE((u64)el0_page) | PTE_AP_EL0 | PTE_AP_RO | PTE_PXN;
    *mmu_entry(0, (u64)el0_data, 3) = PTE_NORMAL_PAGE((u64)el0_data) | PTE_AP_EL0 | PTE_PXN | PTE_UXN;
    CHECK("EL0 code is one page", (u64)el0_irq_end - (u64)el0_page < 4096, 1);
    /* SPAN = 1: taking an exception leaves PSTATE.PAN alone; UMA = 0: DAIF is EL1-only */
    set_sctlr(SCTLR_SPAN | SCTLR_nTWI | SCTLR_nTWE, SCTLR_UMA);
    mmu_enable_identity();
    set_sync_handler(sync_handler);
    set_irq_handler(irq_handler);
    kernel_page[0] = 0x1234;
    ((volatile u64 *)el0_data)[0] = 0xabcd;

    /* SVC from EL0 */
    r = run_el0(el0_svc, 7, EL0_SP, SPSR_EL0T_I);
    print_last("svc", "el0_svc", (u64)el0_svc);
    CHECK("svc: kind 8 (lower EL AArch64, sync)", last.kind, 8);
    CHECK("svc: EC 0x15, IL, imm16 0x42", last.esr, (0x15UL << 26) | (1UL << 25) | 0x42);
    CHECK("svc: ELR = next instruction", last.elr, (u64)el0_svc_ret);
    CHECK("svc: SPSR.M = EL0t", last.spsr & 0xf, 0);
    CHECK("svc: SPSR.I as set by the ERET", (last.spsr >> 7) & 1, 1);
    CHECK("svc: SP_EL0 = the EL0 stack", last.sp_el0, EL0_SP);
    CHECK("svc: x0 from the handler, SP preserved at EL0", r, 107);
    CHECK("back at EL1h", read_sysreg(currentel) | read_sysreg(spsel), 5);

    /* UDF at EL0 */
    r = run_el0(el0_udf, 0, EL0_SP, SPSR_EL0T_I);
    print_last("udf", "el0_udf_insn", (u64)el0_udf_insn);
    CHECK("udf: EC 0, IL", last.esr >> 25, 1);
    CHECK("udf: ELR = the udf", last.elr, (u64)el0_udf_insn);
    CHECK("udf: skipped, routine finished", r, 2);

    /* EL0 loads: its own data page works; a kernel-only page faults with EC 0x24 */
    n0 = last.count;
    r = run_el0(el0_load, (u64)el0_data, EL0_SP, SPSR_EL0T_I);
    CHECK("EL0 reads its data page", r, 0xabcd);
    CHECK("EL0 data page: no exception", last.count - n0, 0);
    r = run_el0(el0_load, (u64)kernel_page, EL0_SP, SPSR_EL0T_I);
    print_last("load kernel page", "el0_load_insn", (u64)el0_load_insn);
    CHECK("load kernel page: EC 0x24 (data abort, lower EL)", ec(), 0x24);
    CHECK("load kernel page: DFSC 0x0f (permission, level 3), WnR 0", last.esr & 0x7f, 0x0f);
    CHECK("load kernel page: FAR", last.far, (u64)kernel_page);
    CHECK("load kernel page: ELR = the load", last.elr, (u64)el0_load_insn);
    r = run_el0(el0_store, (u64)kernel_page + 8, EL0_SP, SPSR_EL0T_I);
    print_last("store kernel page", "el0_store_insn", (u64)el0_store_insn);
    CHECK("store kernel page: DFSC 0x0f, WnR 1", last.esr & 0x7f, 0x4f);
    CHECK("store kernel page: FAR", last.far, (u64)kernel_page + 8);
    CHECK("store kernel page: memory unchanged", kernel_page[1], 0);
    /* an EL0 store to its read-only code page */
    r = run_el0(el0_store, (u64)el0_page + 64, EL0_SP, SPSR_EL0T_I);
    print_last("store EL0 read-only page", "el0_store_insn", (u64)el0_store_insn);
    CHECK("store RO page: EC 0x24, DFSC 0x0f, WnR 1", last.esr & 0xfc00007fUL, (0x24UL << 26) | 0x4f);
    /* a load from a VA that is not mapped at all */
    r = run_el0(el0_load, 0x100000000UL, EL0_SP, SPSR_EL0T_I);
    print_last("load unmapped", "el0_load_insn", (u64)el0_load_insn);
    CHECK("load unmapped: DFSC 0x05 (translation, level 1)", last.esr & 0x3f, 0x05);
    CHECK("load unmapped: FAR", last.far, 0x100000000UL);

    /* system registers: SCTLR_EL1 is UNDEFINED at EL0; DAIF traps (EC 0x18) with UMA = 0, CTR_EL0
     * with UCT = 0 */
    r = run_el0(el0_mrs_sctlr, 0, EL0_SP, SPSR_EL0T_I);
    print_last("mrs sctlr_el1", "el0_mrs_sctlr_insn", (u64)el0_mrs_sctlr_insn);
    CHECK("mrs sctlr_el1: EC 0", ec(), 0);
    CHECK("mrs sctlr_el1: x0 unchanged", r, 0x99);
    r = run_el0(el0_mrs_daif, 0, EL0_SP, SPSR_EL0T_I);
    print_last("mrs daif (UMA=0)", "el0_mrs_daif_insn", (u64)el0_mrs_daif_insn);
    CHECK("mrs daif: EC 0x18", ec(), 0x18);
    CHECK("mrs daif: ISS = op0 3, op2 1, op1 3, CRn 4, Rt 0, CRm 2, read",
          last.esr & 0x1ffffff, (3UL << 20) | (1UL << 17) | (3UL << 14) | (4UL << 10) | (2UL << 1) | 1);
    set_sctlr(0, SCTLR_UCT);
    r = run_el0(el0_mrs_ctr, 0, EL0_SP, SPSR_EL0T_I);
    print_last("mrs ctr_el0 (UCT=0)", "el0_mrs_ctr_insn", (u64)el0_mrs_ctr_insn);
    CHECK("mrs ctr_el0 UCT=0: EC 0x18", ec(), 0x18);
    CHECK("mrs ctr_el0 UCT=0: ISS = op0 3, op2 1, op1 3, CRn 0, Rt 0, CRm 0, read",
          last.esr & 0x1ffffff, (3UL << 20) | (1UL << 17) | (3UL << 14) | 1);
    set_sctlr(SCTLR_UCT, 0);
    n0 = last.count;
    r = run_el0(el0_mrs_ctr, 0, EL0_SP, SPSR_EL0T_I);
    CHECK("mrs ctr_el0 UCT=1: no exception", last.count - n0, 0);
    CHECK("mrs ctr_el0 UCT=1: the value of CTR_EL0", r, read_sysreg(ctr_el0));

    /* WFI at EL0: trapped with nTWI = 0 (EC 1), executed with nTWI = 1 */
    set_sctlr(0, SCTLR_nTWI);
    r = run_el0(el0_wfi, 0, EL0_SP, SPSR_EL0T_I);
    print_last("wfi nTWI=0", "el0_wfi_insn", (u64)el0_wfi_insn);
    CHECK("wfi trapped: EC 0x01", ec(), 0x01);
    CHECK("wfi trapped: ISS TI = 0 (WFI)", last.esr & 3, 0);
    CHECK("wfi trapped: skipped", r, 1);
    set_sctlr(SCTLR_nTWI, 0);
    n0 = last.count;
    gic_send_sgi_self(3);          /* pending, masked by PSTATE.I at EL0: WFI returns */
    isb();
    r = run_el0(el0_wfi, 0, EL0_SP, SPSR_EL0T_I);
    CHECK("wfi nTWI=1: returns, no exception", last.count - n0, 0);
    CHECK("wfi nTWI=1: routine finished", r, 1);
    u32 iar = icc_iar1();
    CHECK("SGI 3 still pending after the EL0 WFI", iar, 3);
    icc_eoir1(iar);

    /* IRQ taken from EL0 (IRQs unmasked there): vector offset 0x480 */
    irq_count = 0;
    r = run_el0(el0_irq, 0, EL0_SP, 0);
    printf("irq at EL0: kind=%d INTID=%u SPSR.M=0x%lx ELR=el0_irq_after+0x%lx\n", irq_kind, irq_intid,
           irq_spsr & 0xf, irq_elr - (u64)el0_irq_after);
    CHECK("irq at EL0: one IRQ", irq_count, 1);
    CHECK("irq at EL0: kind 9 (lower EL AArch64, IRQ)", irq_kind, 9);
    CHECK("irq at EL0: SPSR.M = EL0t, DAIF clear", irq_spsr & 0x3cf, 0);
    CHECK("irq at EL0: ELR inside the EL0 routine", irq_elr >= (u64)el0_irq_after && irq_elr < (u64)el0_irq_end, 1);
    CHECK("irq at EL0: SP_EL0 preserved", irq_sp_el0, EL0_SP);
    CHECK("irq at EL0: routine finished", r, 3);

    printf("exceptions from EL0: %u\n", last.count);
    set_sync_handler(0);
    set_irq_handler(0);
    finish();
}
