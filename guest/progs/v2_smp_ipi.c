/* GICv2, 4 CPUs: SGIs through GICD_SGIR by target list, to all but self (filter 1) and to self
 * (filter 2), each arriving with the sender's CPU number in GICC_IAR[12:10]; one SGI pending on
 * CPU 0 from three CPUs at once (GICD_SPENDSGIR shows the sources, three acknowledges follow);
 * the banked ITARGETSR0-7; an SPI routed by ITARGETSR. Only CPU 0 prints. */
#include "guest.h"

#define NCPU 4
#define MAXREC 16

static volatile u32 rec[NCPU][MAXREC];
static volatile u32 nrec[NCPU];
static volatile u32 ready[NCPU], itargets[NCPU], go_send, sent[NCPU];

static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    unsigned cpu = cpu_id();
    u32 iar = gicc_iar();
    if ((iar & 0x3ff) == INTID_SPURIOUS)
        return;
    u32 n = nrec[cpu];
    if (n < MAXREC)
        rec[cpu][n] = iar;
    dmb_ish();
    nrec[cpu] = n + 1;
    gicc_eoir(iar);
}

static int wait_for(volatile u32 *p, u32 v)
{
    for (u64 spins = 0; spins < 200000000UL; spins++)
        if (READ_ONCE(*p) >= v)
            return 1;
    return 0;
}

static void secondary(unsigned cpu)
{
    gicv2_cpu_init();
    itargets[cpu] = gicd_read(GICD_ITARGETSR);
    dsb_sy();
    ready[cpu] = 1;
    irq_enable();
    /* Phase 1: each sends SGI 2 to CPU 0 when told (CPU 0 has IRQs masked). */
    while (!READ_ONCE(go_send))
        wfi();
    gicv2_send_sgi(2, 1U << 0, SGIR_LIST);
    dsb_sy();
    sent[cpu] = 1;
    /* Until SGI 15 (the last one CPU 0 sends) has been handled here. */
    for (;;) {
        u32 n = READ_ONCE(nrec[cpu]);
        if (n > 0 && n <= MAXREC && READ_ONCE(rec[cpu][n - 1]) == 15)
            break;
        wfi();
    }
    irq_disable();
}

int main(void)
{
    char what[96];
    printf("v2_smp_ipi: GICv2, %u CPUs\n", NCPU);
    gicv2_dist_init();
    gicv2_cpu_init();
    set_irq_handler(irq_handler);
    CHECK("GICD_TYPER.CPUNumber", (gicd_read(GICD_TYPER) >> 5) & 7, NCPU - 1);
    CHECK("cpu0 ITARGETSR0 is its own bit", gicd_read(GICD_ITARGETSR), 0x01010101);
    for (unsigned c = 1; c < NCPU; c++) {
        snprintf(what, sizeof what, "CPU_ON cpu%u", c);
        CHECK(what, psci_cpu_on(c, secondary), 0);
        snprintf(what, sizeof what, "cpu%u ready", c);
        check_true(what, wait_for(&ready[c], 1));
        snprintf(what, sizeof what, "cpu%u ITARGETSR0", c);
        CHECK(what, itargets[c], 0x01010101U << c);
    }

    /* SGI c to CPU c by target list: the source is CPU 0 */
    for (unsigned c = 1; c < NCPU; c++) {
        u32 before = nrec[c];
        gicv2_send_sgi(c, 1U << c, SGIR_LIST);
        snprintf(what, sizeof what, "SGI %u reached cpu%u", c, c);
        check_true(what, wait_for(&nrec[c], before + 1));
    }
    /* filter 1: every CPU but the sender */
    u32 before[NCPU];
    for (unsigned c = 1; c < NCPU; c++)
        before[c] = nrec[c];
    gicv2_send_sgi(9, 0, SGIR_OTHERS);
    for (unsigned c = 1; c < NCPU; c++) {
        snprintf(what, sizeof what, "SGI 9 (all but self) reached cpu%u", c);
        check_true(what, wait_for(&nrec[c], before[c] + 1));
    }
    CHECK("SGI 9 not pending on the sender", gicv2_is_pending(9), 0);
    /* filter 2 on CPU 0 itself */
    gicv2_send_sgi(10, 0x0e, SGIR_SELF);
    CHECK("filter 2: SGI 10 to self only", gicc_iar(), 10);
    gicc_eoir(10);

    /* three sources at once: CPUs 1-3 each send SGI 2 to CPU 0, whose IRQs are masked */
    go_send = 1;
    dsb_sy();
    for (unsigned c = 1; c < NCPU; c++)
        gicv2_send_sgi(11, 1U << c, SGIR_LIST);   /* wake it from WFI */
    for (unsigned c = 1; c < NCPU; c++)
        wait_for(&sent[c], 1);
    CHECK("SPENDSGIR: SGI 2 pending from CPUs 1, 2, 3", readb(GICD_BASE + GICD_SPENDSGIR + 2), 0x0e);
    for (unsigned k = 1; k < NCPU; k++) {
        u32 iar = gicc_iar();
        snprintf(what, sizeof what, "SGI 2 acknowledge %u: CPUID %u", k, k);
        CHECK(what, iar, (k << 10) | 2);
        gicc_eoir(iar);
    }
    CHECK("SGI 2 idle", gicv2_is_pending(2) | gicv2_is_active(2), 0);

    /* an SPI routed to CPU 2 by ITARGETSR */
    gicv2_set_edge(40, 1);
    gicv2_set_targets(40, 1U << 2);
    CHECK("ITARGETSR of SPI 40", readb(GICD_BASE + GICD_ITARGETSR + 40), 1U << 2);
    gicv2_enable_irq(40);
    u32 b2 = nrec[2];
    gicv2_set_pending(40);
    check_true("SPI 40 reached cpu2", wait_for(&nrec[2], b2 + 1));
    CHECK("cpu0 saw nothing", gicc_iar(), INTID_SPURIOUS);

    for (unsigned c = 1; c < NCPU; c++) {
        u32 b = nrec[c];
        gicv2_send_sgi(15, 1U << c, SGIR_LIST);
        wait_for(&nrec[c], b + 1);
    }
    printf("cpu | interrupts received (CPUID<<10 | INTID) in order\n");
    for (unsigned c = 1; c < NCPU; c++) {
        printf("%3u |", c);
        for (u32 i = 0; i < nrec[c] && i < MAXREC; i++)
            printf(" 0x%x", rec[c][i]);
        printf("\n");
    }
    CHECK("cpu1 record", nrec[1] == 4 && rec[1][0] == 1 && rec[1][1] == 9 && rec[1][2] == 11 && rec[1][3] == 15, 1);
    CHECK("cpu2 record", nrec[2] == 5 && rec[2][0] == 2 && rec[2][1] == 9 && rec[2][2] == 11 && rec[2][3] == 40 && rec[2][4] == 15, 1);
    CHECK("cpu3 record", nrec[3] == 4 && rec[3][0] == 3 && rec[3][1] == 9 && rec[3][2] == 11 && rec[3][3] == 15, 1);
    for (unsigned c = 1; c < NCPU; c++) {
        long st = 0;
        for (u64 spins = 0; spins < 10000000UL; spins++)
            if ((st = psci_affinity_info(c)) == 1)
                break;
        snprintf(what, sizeof what, "cpu%u OFF", c);
        CHECK(what, st, 1);
    }
    finish();
}
