/* Virtual timer PPI 27: level-sensitive PPI driven by CNTV_CTL/CVAL. */
#include "guest.h"

#define BIT27 (1U << VTIMER_PPI)

static volatile u32 irq_seen, irq_count;

static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    u32 iar = icc_iar1();
    if (iar == INTID_SPURIOUS)
        return;
    irq_seen = iar;
    irq_count++;
    if (iar == VTIMER_PPI)
        vtimer_ctl(CNTV_ENABLE | CNTV_IMASK);   /* drop the level before EOI */
    icc_eoir1(iar);
}

static u64 pend_act(void)
{
    u64 rd = gicr_self();
    return ((u64)((readl(rd + GICR_ISACTIVER0) & BIT27) != 0) << 4) | ((readl(rd + GICR_ISPENDR0) & BIT27) != 0);
}

int main(void)
{
    printf("ppi_timer: virtual timer PPI %u\n", VTIMER_PPI);
    gic_dist_init();
    gic_cpu_init();
    u64 rd = gicr_self();
    printf("GICR_ICFGR1 PPI27 config bits=%u\n", (readl(rd + GICR_ICFGR1) >> ((VTIMER_PPI - 16) * 2)) & 3);
    gic_enable_irq(VTIMER_PPI);
    CHECK("PPI 27 enabled", gic_is_enabled(VTIMER_PPI), 1);
    u64 f = cntfrq();

    /* far in the future: not firing */
    vtimer_ctl(0);
    vtimer_set_cval(cntvct() + f * 10);
    vtimer_ctl(CNTV_ENABLE);
    CHECK("CVAL +10s: ISTATUS 0", vtimer_get_ctl() & CNTV_ISTATUS, 0);
    CHECK("CVAL +10s: not pending/active (act<<4|pend)", pend_act(), 0x00);
    CHECK("CVAL +10s: IAR1 1023", icc_iar1(), INTID_SPURIOUS);

    /* TVAL 1 ms, WFI with IRQs masked (WFI wakes on the pending interrupt) */
    vtimer_set_tval((u32)(f / 1000));
    u64 spins = 0;
    while (!(vtimer_get_ctl() & CNTV_ISTATUS) || !gic_is_pending(VTIMER_PPI)) {
        wfi();
        if (++spins > 1000000) break;
    }
    CHECK("TVAL 1ms fired: CTL = ENABLE|ISTATUS", vtimer_get_ctl(), CNTV_ENABLE | CNTV_ISTATUS);
    CHECK("fired: pending (act<<4|pend)", pend_act(), 0x01);
    check_true("TVAL reads negative after expiry", (int32_t)read_sysreg(cntv_tval_el0) <= 0);
    u32 iar = icc_iar1();
    CHECK("IAR1 = 27", iar, VTIMER_PPI);
    CHECK("after ack, level still high: active+pending", pend_act(), 0x11);
    CHECK("second IAR1 1023", icc_iar1(), INTID_SPURIOUS);
    vtimer_ctl(CNTV_ENABLE | CNTV_IMASK);
    CHECK("IMASK set: ISTATUS still 1", vtimer_get_ctl(), CNTV_ENABLE | CNTV_IMASK | CNTV_ISTATUS);
    CHECK("IMASK set: level low, active only", pend_act(), 0x10);
    icc_eoir1(iar);
    CHECK("after EOIR1: idle", pend_act(), 0x00);
    CHECK("IAR1 1023 while masked", icc_iar1(), INTID_SPURIOUS);

    vtimer_ctl(CNTV_ENABLE);
    CHECK("IMASK cleared: pending again", pend_act(), 0x01);
    iar = icc_iar1();
    CHECK("IAR1 = 27 again", iar, VTIMER_PPI);
    icc_eoir1(iar);
    CHECK("EOIR1 with level high: pending again", pend_act(), 0x01);

    vtimer_set_cval(cntvct() + f * 10);
    CHECK("CVAL moved +10s: ISTATUS 0", vtimer_get_ctl(), CNTV_ENABLE);
    CHECK("CVAL moved: level low, not pending", pend_act(), 0x00);
    CHECK("CVAL moved: IAR1 1023", icc_iar1(), INTID_SPURIOUS);

    /* disabled timer with an expired CVAL: no ISTATUS */
    vtimer_ctl(0);
    vtimer_set_cval(0);
    CHECK("ENABLE=0, CVAL=0: CTL 0", vtimer_get_ctl(), 0);
    CHECK("ENABLE=0: not pending", pend_act(), 0x00);
    vtimer_ctl(CNTV_ENABLE);
    CHECK("ENABLE=1, CVAL=0: fires at once", pend_act(), 0x01);
    vtimer_ctl(0);
    CHECK("ENABLE=0 again: level low", pend_act(), 0x00);

    /* PPI disabled in the GIC: pending but not signalled */
    gic_disable_irq(VTIMER_PPI);
    vtimer_ctl(CNTV_ENABLE);
    CHECK("GIC-disabled PPI 27: pending", pend_act(), 0x01);
    CHECK("GIC-disabled PPI 27: IAR1 1023", icc_iar1(), INTID_SPURIOUS);
    vtimer_ctl(0);
    gic_enable_irq(VTIMER_PPI);

    /* exception form: TVAL 1 ms, IRQs unmasked, WFI */
    set_irq_handler(irq_handler);
    vtimer_set_tval((u32)(f / 1000));
    vtimer_ctl(CNTV_ENABLE);
    irq_enable();
    spins = 0;
    while (!irq_count && ++spins < 1000000)
        wfi();
    irq_disable();
    CHECK("IRQ handler ran once", irq_count, 1);
    CHECK("IRQ handler saw INTID 27", irq_seen, VTIMER_PPI);
    CHECK("after handler: idle", pend_act(), 0x00);
    vtimer_ctl(0);

    /* several timer periods in sequence */
    u32 n_ok = 0;
    for (int i = 0; i < 5; i++) {
        irq_count = 0;
        vtimer_set_tval((u32)(f / 2000));
        vtimer_ctl(CNTV_ENABLE);
        irq_enable();
        spins = 0;
        while (!irq_count && ++spins < 1000000)
            wfi();
        irq_disable();
        if (irq_count == 1 && irq_seen == VTIMER_PPI)
            n_ok++;
    }
    CHECK("5 timer periods of 0.5 ms each delivered once", n_ok, 5);
    vtimer_ctl(0);
    finish();
}
