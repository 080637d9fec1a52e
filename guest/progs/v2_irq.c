/* GICv2 SPIs and the virtual timer through the memory-mapped CPU interface: ISPENDR/ICPENDR,
 * ICACTIVER, edge and level configuration, priority order and preemption through IRQ exceptions,
 * the timer's level PPI 27 acknowledged and EOI'd through GICC. */
#include "guest.h"

static volatile u32 seen[8], nseen;

static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    u32 iar = gicc_iar();
    if ((iar & 0x3ff) == INTID_SPURIOUS)
        return;
    if (nseen < 8)
        seen[nseen] = iar;
    nseen++;
    if (iar == VTIMER_PPI)
        vtimer_ctl(CNTV_ENABLE | CNTV_IMASK);   /* drop the level before EOI */
    if (iar == 41) {
        /* preempted by SPI 42 (higher priority) while handling 41 */
        irq_enable();
        gicv2_set_pending(42);
        irq_disable();
    }
    gicc_eoir(iar);
}

static u64 pend_act(u32 id) { return ((u64)gicv2_is_active(id) << 4) | (u64)gicv2_is_pending(id); }

int main(void)
{
    printf("v2_irq: GICv2 SPIs and the virtual timer\n");
    gicv2_dist_init();
    gicv2_cpu_init();
    set_irq_handler(irq_handler);
    for (u32 id = 40; id < 44; id++) {
        gicv2_set_edge(id, 1);
        gicv2_enable_irq(id);
    }
    CHECK("SPI 40 edge", (gicd_read(GICD_ICFGR + 8) >> 17) & 1, 1);

    /* ISPENDR / ICPENDR / acknowledge / ICACTIVER */
    gicv2_set_pending(40);
    CHECK("SPI 40 pending (act<<4|pend)", pend_act(40), 0x01);
    CHECK("GICC_HPPIR names SPI 40", gicc_read(GICC_HPPIR), 40);
    gicv2_clear_pending(40);
    CHECK("ICPENDR clears it", pend_act(40), 0);
    CHECK("IAR 1023", gicc_iar(), INTID_SPURIOUS);
    gicv2_set_pending(40);
    u32 iar = gicc_iar();
    CHECK("IAR 40", iar, 40);
    CHECK("SPI 40 active", pend_act(40), 0x10);
    gicv2_clear_active(40);
    CHECK("ICACTIVER deactivates", pend_act(40), 0);
    gicc_eoir(iar);
    CHECK("running priority idle after EOIR", gicc_read(GICC_RPR), 0xff);

    /* priority order, then preemption inside the handler */
    gicv2_set_priority(41, 0x80);
    gicv2_set_priority(42, 0x40);
    gicv2_set_priority(43, 0xc0);
    gicv2_set_pending(43);
    gicv2_set_pending(41);
    nseen = 0;
    irq_enable();
    for (int i = 0; i < 1000 && nseen < 3; i++)
        ;
    irq_disable();
    CHECK("three interrupts taken", nseen, 3);
    CHECK("first SPI 41 (0x80 before 0xc0)", seen[0], 41);
    CHECK("SPI 42 preempts 41's handler", seen[1], 42);
    CHECK("then SPI 43", seen[2], 43);
    CHECK("nothing active", gicd_read(GICD_ISACTIVER + 4) & 0xf00, 0);

    /* level SPI 44: pending while the line... here the soft pending state of ISPENDR */
    gicv2_set_edge(44, 0);
    gicv2_enable_irq(44);
    gicv2_set_pending(44);
    iar = gicc_iar();
    CHECK("level SPI 44 acked", iar, 44);
    CHECK("level SPI 44 active, not pending after ack", pend_act(44), 0x10);
    gicc_eoir(iar);
    CHECK("SPI 44 idle", pend_act(44), 0);

    /* the virtual timer: PPI 27, level, through GICC */
    gicv2_enable_irq(VTIMER_PPI);
    u64 f = cntfrq();
    vtimer_ctl(0);
    vtimer_set_cval(cntvct() + f * 10);
    vtimer_ctl(CNTV_ENABLE);
    CHECK("timer +10 s: not pending", pend_act(VTIMER_PPI), 0);
    vtimer_set_tval((u32)(f / 1000));
    u64 spins = 0;
    while (!gicv2_is_pending(VTIMER_PPI) && ++spins < 1000000)
        wfi();
    CHECK("timer fired: PPI 27 pending", pend_act(VTIMER_PPI), 0x01);
    nseen = 0;
    irq_enable();
    for (int i = 0; i < 1000 && nseen < 1; i++)
        ;
    irq_disable();
    CHECK("timer IRQ taken once", nseen, 1);
    CHECK("timer INTID", seen[0], VTIMER_PPI);
    CHECK("PPI 27 idle (masked timer)", pend_act(VTIMER_PPI), 0);
    vtimer_ctl(0);
    finish();
}
