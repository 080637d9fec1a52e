/* 4 CPUs: PSCI CPU_ON, SGIs by target list and IRM broadcast, ping-pong, LDXR/STXR counter, WFE/SEV.
 * Only CPU 0 prints; the secondaries record into memory. */
#include "guest.h"

#define NCPU 4
#define MAXREC 16
#define ITERS 20000

static volatile u32 rec[NCPU][MAXREC];
static volatile u32 nrec[NCPU];
static volatile u32 ready[NCPU], woke[NCPU], counted[NCPU], phase;
static volatile u32 wfe_flag, start_count;
static volatile u64 counter;

static void atomic_inc(volatile u64 *p)
{
    u64 tmp;
    u32 fail;
    asm volatile("1: ldxr %0, [%2]\n"
                 "   add %0, %0, #1\n"
                 "   stxr %w1, %0, [%2]\n"
                 "   cbnz %w1, 1b\n"
                 : "=&r"(tmp), "=&r"(fail) : "r"(p) : "memory");
}

static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    unsigned cpu = cpu_id();
    u32 iar = icc_iar1();
    if (iar == INTID_SPURIOUS)
        return;
    u32 n = nrec[cpu];
    if (n < MAXREC)
        rec[cpu][n] = iar;
    dmb_ish();
    nrec[cpu] = n + 1;
    if (iar == 11)
        gic_send_sgi_cpu(12, 0);    /* pong to CPU 0 */
    icc_eoir1(iar);
}

static void secondary(unsigned cpu)
{
    gic_cpu_init();
    writel(gicr_self() + GICR_ISENABLER0, 0xffff);
    dsb_sy();
    ready[cpu] = 1;
    irq_enable();
    while (READ_ONCE(phase) < 1)
        wfi();
    irq_disable();

    /* WFE/SEV */
    while (!READ_ONCE(wfe_flag))
        wfe();
    woke[cpu] = 1;
    dsb_sy();

    /* shared counter */
    atomic_inc((volatile u64 *)&start_count);
    while (READ_ONCE(start_count) < NCPU)
        ;
    for (int i = 0; i < ITERS; i++)
        atomic_inc(&counter);
    dsb_sy();
    counted[cpu] = 1;
    dsb_sy();
}

static int wait_for(volatile u32 *p, u32 v)
{
    for (u64 spins = 0; spins < 200000000UL; spins++)
        if (READ_ONCE(*p) >= v)
            return 1;
    return 0;
}

int main(void)
{
    char what[96];
    printf("smp_ipi: %u CPUs\n", NCPU);
    gic_dist_init();
    gic_cpu_init();
    writel(gicr_self() + GICR_ISENABLER0, 0xffff);
    set_irq_handler(irq_handler);

    for (unsigned c = 1; c < NCPU; c++) {
        snprintf(what, sizeof what, "AFFINITY_INFO cpu%u before CPU_ON = OFF (1)", c);
        CHECK(what, psci_affinity_info(c), 1);
        snprintf(what, sizeof what, "CPU_ON cpu%u = SUCCESS (0)", c);
        CHECK(what, psci_cpu_on(c, secondary), 0);
        snprintf(what, sizeof what, "cpu%u ready", c);
        check_true(what, wait_for(&ready[c], 1));
        snprintf(what, sizeof what, "AFFINITY_INFO cpu%u = ON (0)", c);
        CHECK(what, psci_affinity_info(c), 0);
    }
    CHECK("CPU_ON cpu1 again = ALREADY_ON (-4)", psci_cpu_on(1, secondary), (u64)-4L);

    /* SGI c to each CPU c by target list */
    for (unsigned c = 1; c < NCPU; c++) {
        u32 before = nrec[c];
        gic_send_sgi_cpu(c, c);
        snprintf(what, sizeof what, "SGI %u delivered to cpu%u", c, c);
        check_true(what, wait_for(&nrec[c], before + 1));
    }
    /* SGI 9 broadcast IRM=1: all but self */
    u32 before9[NCPU];
    for (unsigned c = 1; c < NCPU; c++)
        before9[c] = nrec[c];
    gic_send_sgi_broadcast(9);
    for (unsigned c = 1; c < NCPU; c++) {
        snprintf(what, sizeof what, "broadcast SGI 9 reached cpu%u", c);
        check_true(what, wait_for(&nrec[c], before9[c] + 1));
    }
    CHECK("broadcast SGI 9 not pending on sender cpu0", (gicr_sgi_pending0() >> 9) & 1, 0);
    CHECK("cpu0 IAR1 1023 after broadcast", icc_iar1(), INTID_SPURIOUS);
    /* SGI 10 to cpus 1 and 3 in one target list */
    u32 b1 = nrec[1], b3 = nrec[3];
    gic_send_sgi(10, (1U << 1) | (1U << 3));
    check_true("SGI 10 target list {1,3} reached cpu1", wait_for(&nrec[1], b1 + 1));
    check_true("SGI 10 target list {1,3} reached cpu3", wait_for(&nrec[3], b3 + 1));
    /* ping-pong: SGI 11 to cpu c, its handler sends SGI 12 back; CPU 0 polls with IRQs masked */
    for (unsigned c = 1; c < NCPU; c++) {
        gic_send_sgi_cpu(11, c);
        u32 iar = INTID_SPURIOUS;
        for (u64 spins = 0; spins < 50000000UL && iar == INTID_SPURIOUS; spins++)
            iar = icc_iar1();
        if (iar != INTID_SPURIOUS)
            icc_eoir1(iar);
        snprintf(what, sizeof what, "ping cpu%u -> pong SGI 12 on cpu0", c);
        CHECK(what, iar, 12);
    }
    /* let the last SGI recordings land, then end the IPI phase with a kick (SGI 15) */
    phase = 1;
    dsb_sy();
    for (unsigned c = 1; c < NCPU; c++) {
        u32 before = nrec[c];
        gic_send_sgi_cpu(15, c);
        wait_for(&nrec[c], before + 1);
    }
    printf("cpu | SGIs received in order\n");
    for (unsigned c = 1; c < NCPU; c++) {
        printf("%3u |", c);
        for (u32 i = 0; i < nrec[c] && i < MAXREC; i++)
            printf(" %u", rec[c][i]);
        printf("\n");
    }
    CHECK("cpu1 record", nrec[1] == 5 && rec[1][0] == 1 && rec[1][1] == 9 && rec[1][2] == 10 && rec[1][3] == 11 && rec[1][4] == 15, 1);
    CHECK("cpu2 record", nrec[2] == 4 && rec[2][0] == 2 && rec[2][1] == 9 && rec[2][2] == 11 && rec[2][3] == 15, 1);
    CHECK("cpu3 record", nrec[3] == 5 && rec[3][0] == 3 && rec[3][1] == 9 && rec[3][2] == 10 && rec[3][3] == 11 && rec[3][4] == 15, 1);

    /* WFE/SEV */
    delay_us(2000);
    CHECK("secondaries still waiting in WFE loop", woke[1] | woke[2] | woke[3], 0);
    wfe_flag = 1;
    dsb_sy();
    sev();
    int all = 1;
    for (unsigned c = 1; c < NCPU; c++)
        all &= wait_for(&woke[c], 1);
    check_true("flag + SEV woke all secondaries", all);

    /* LDXR/STXR counter */
    atomic_inc((volatile u64 *)&start_count);
    while (READ_ONCE(start_count) < NCPU)
        ;
    for (int i = 0; i < ITERS; i++)
        atomic_inc(&counter);
    for (unsigned c = 1; c < NCPU; c++)
        wait_for(&counted[c], 1);
    printf("shared counter total=%lu\n", (u64)counter);
    CHECK("LDXR/STXR counter = 4 x 20000", counter, NCPU * ITERS);

    /* secondaries return from their function and call CPU_OFF */
    for (unsigned c = 1; c < NCPU; c++) {
        long st = 0;
        for (u64 spins = 0; spins < 10000000UL; spins++)
            if ((st = psci_affinity_info(c)) == 1)
                break;
        snprintf(what, sizeof what, "cpu%u OFF after CPU_OFF", c);
        CHECK(what, st, 1);
    }
    finish();
}
