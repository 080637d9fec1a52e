/* MMU on (identity map, 4K granule, caches on): GIC SGI round trip, RAM, exclusives, SVC. */
#include "guest.h"

static u64 buf[512] __attribute__((aligned(64)));
static volatile u64 xcount;
static volatile u32 svc_count;

static void sync_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    if (((read_sysreg(esr_el1) >> 26) & 0x3f) == 0x15) {
        svc_count++;
        return;
    }
    printf("UNEXPECTED SYNC ESR=0x%lx ELR=0x%lx FAR=0x%lx\n", read_sysreg(esr_el1), f->elr, read_sysreg(far_el1));
    exit_status(3);
}

static volatile u32 irq_seen;
static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    u32 iar = icc_iar1();
    if (iar != INTID_SPURIOUS) {
        irq_seen = iar;
        icc_eoir1(iar);
    }
}

int main(void)
{
    printf("mmu: identity map with caches on\n");
    gic_dist_init();
    gic_cpu_init();
    writel(gicr_self() + GICR_ISENABLER0, 0xffff);
    mmu_enable_identity();
    u64 sctlr = read_sysreg(sctlr_el1);
    CHECK("SCTLR_EL1.M", sctlr & 1, 1);
    CHECK("SCTLR_EL1.C", (sctlr >> 2) & 1, 1);
    CHECK("SCTLR_EL1.I", (sctlr >> 12) & 1, 1);
    printf("TCR_EL1.T0SZ=%lu TG0=%lu\n", read_sysreg(tcr_el1) & 0x3f, (read_sysreg(tcr_el1) >> 14) & 3);
    printf("uart output through the Device mapping works\n");

    /* RAM through the Normal mapping */
    for (u32 i = 0; i < 512; i++)
        buf[i] = 0x0123456789abcdefUL ^ ((u64)i * 0x9e3779b97f4a7c15UL);
    u64 sum = 0, bad = 0;
    for (u32 i = 0; i < 512; i++) {
        sum += buf[i];
        if (buf[i] != (0x0123456789abcdefUL ^ ((u64)i * 0x9e3779b97f4a7c15UL))) bad++;
    }
    CHECK("RAM write/read 4 KiB", bad, 0);
    printf("RAM checksum=0x%lx\n", sum);
    /* AT: translate a RAM address, identity */
    asm volatile("at s1e1r, %0" :: "r"((u64)buf) : "memory");
    isb();
    u64 par = read_sysreg(par_el1);
    CHECK("AT S1E1R ok (PAR.F=0)", par & 1, 0);
    CHECK("AT S1E1R identity PA", par & 0x0000fffffffff000UL, (u64)buf & ~0xfffUL);
    printf("PAR_EL1.ATTR=0x%lx\n", par >> 56);

    /* exclusives on Normal memory */
    for (int i = 0; i < 1000; i++) {
        u64 t; u32 f;
        asm volatile("1: ldxr %0, [%2]\n add %0, %0, #1\n stxr %w1, %0, [%2]\n cbnz %w1, 1b"
                     : "=&r"(t), "=&r"(f) : "r"(&xcount) : "memory");
    }
    CHECK("LDXR/STXR counter", xcount, 1000);

    /* GIC: polled SGI round trip */
    gic_send_sgi_self(5);
    u32 iar = icc_iar1();
    CHECK("SGI 5 IAR1 with MMU on", iar, 5);
    icc_eoir1(iar);
    CHECK("IAR1 1023", icc_iar1(), INTID_SPURIOUS);
    /* and by exception */
    set_irq_handler(irq_handler);
    irq_enable();
    gic_send_sgi_self(6);
    for (int spins = 0; !irq_seen && spins < 1000000; spins++)
        wfi();
    irq_disable();
    CHECK("SGI 6 by IRQ exception with MMU on", irq_seen, 6);
    /* SPI through the distributor mapping */
    gic_set_pending(40);
    gic_enable_irq(40);
    iar = icc_iar1();
    CHECK("SPI 40 with MMU on", iar, 40);
    icc_eoir1(iar);

    set_sync_handler(sync_handler);
    asm volatile("svc #1" ::: "memory");
    CHECK("SVC with MMU on", svc_count, 1);
    set_sync_handler(0);
    finish();
}
