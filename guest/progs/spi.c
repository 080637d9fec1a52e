/* SPIs 32..40: pending via GICD_ISPENDR, edge/level config, IROUTER, enable, priorities, active. */
#include "guest.h"

#define FIRST 32
#define LAST 40

static volatile u32 irq_log[16], irq_n;

static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    u32 iar = icc_iar1();
    if (iar == INTID_SPURIOUS)
        return;
    if (irq_n < 16)
        irq_log[irq_n] = iar;
    irq_n++;
    icc_eoir1(iar);
}

static u64 state(u32 i) { return ((u64)gic_is_active(i) << 4) | (u64)gic_is_pending(i); }

int main(void)
{
    char what[96];
    printf("spi: SPIs %u..%u\n", FIRST, LAST);
    gic_dist_init();
    gic_cpu_init();

    CHECK("GICD_ISENABLER1 after init", gicd_read(GICD_ISENABLER + 4), 0);
    CHECK("GICD_ISPENDR1 after init", gicd_read(GICD_ISPENDR + 4), 0);
    CHECK("GICD_ICFGR2 after init (level)", gicd_read(GICD_ICFGR + 8), 0);
    for (u32 i = FIRST; i <= LAST; i++)
        gic_route_spi(i, 0);
    CHECK("GICD_IROUTER33 = CPU 0", readq(GICD_BASE + GICD_IROUTER + 8 * 33), 0);
    for (u32 i = FIRST; i <= 35; i++)
        gic_set_edge(i, 1);
    CHECK("GICD_ICFGR2: 32..35 edge, 36.. level", gicd_read(GICD_ICFGR + 8), 0xaa);

    for (u32 i = FIRST; i <= LAST; i++) {
        const char *kind = i <= 35 ? "edge" : "level";
        gic_set_pending(i);
        snprintf(what, sizeof what, "SPI %u (%s) pending, disabled", i, kind);
        CHECK(what, state(i), 0x01);
        snprintf(what, sizeof what, "SPI %u disabled: IAR1 1023", i);
        CHECK(what, icc_iar1(), INTID_SPURIOUS);
        gic_enable_irq(i);
        u32 iar = icc_iar1();
        snprintf(what, sizeof what, "SPI %u enabled: IAR1", i);
        CHECK(what, iar, i);
        snprintf(what, sizeof what, "SPI %u (%s) after ack: active, latch cleared", i, kind);
        CHECK(what, state(i), 0x10);
        icc_eoir1(iar);
        snprintf(what, sizeof what, "SPI %u after EOIR1: idle", i);
        CHECK(what, state(i), 0x00);
    }
    CHECK("GICD_ISENABLER1 bits 0..8", gicd_read(GICD_ISENABLER + 4), 0x1ff);

    /* priorities: 34 (0x40) > 33 (0x80) > 35 (0xa0 default) > 32 (0xc0) */
    gic_set_priority(32, 0xc0);
    gic_set_priority(33, 0x80);
    gic_set_priority(34, 0x40);
    CHECK("GICD_IPRIORITYR8", gicd_read(GICD_IPRIORITYR + 32), 0xa04080c0);
    for (u32 i = 32; i <= 35; i++)
        gic_set_pending(i);
    u32 order = 0;
    for (int k = 0; k < 4; k++) {
        u32 iar = icc_iar1();
        order = (order << 8) | (iar & 0xff);
        icc_eoir1(iar);
    }
    CHECK("ack order by priority 34,33,35,32", order, 0x22212320);
    CHECK("IAR1 1023 after all", icc_iar1(), INTID_SPURIOUS);

    /* active state: ISACTIVER then pending -> not acked until ICACTIVER */
    gicd_write(GICD_ISACTIVER + 4, 1U << (36 - 32));
    CHECK("SPI 36 set active by ISACTIVER", state(36), 0x10);
    gic_set_pending(36);
    CHECK("SPI 36 active+pending", state(36), 0x11);
    CHECK("active+pending SPI not acked", icc_iar1(), INTID_SPURIOUS);
    gicd_write(GICD_ICACTIVER + 4, 1U << (36 - 32));
    CHECK("ICACTIVER: SPI 36 pending only", state(36), 0x01);
    u32 iar = icc_iar1();
    CHECK("SPI 36 acked after ICACTIVER", iar, 36);
    icc_eoir1(iar);

    /* ICPENDR */
    gic_set_pending(37);
    gic_set_pending(38);
    CHECK("GICD_ISPENDR1 37+38", gicd_read(GICD_ISPENDR + 4), (1U << 5) | (1U << 6));
    gicd_write(GICD_ICPENDR + 4, (1U << 5) | (1U << 6));
    CHECK("ICPENDR clears both", gicd_read(GICD_ISPENDR + 4), 0);
    CHECK("IAR1 1023 after ICPENDR", icc_iar1(), INTID_SPURIOUS);

    /* disable while pending */
    gic_disable_irq(39);
    gic_set_pending(39);
    CHECK("disabled SPI 39 stays pending", state(39), 0x01);
    CHECK("disabled SPI 39: IAR1 1023", icc_iar1(), INTID_SPURIOUS);
    gic_enable_irq(39);
    iar = icc_iar1();
    CHECK("re-enabled SPI 39 acked", iar, 39);
    icc_eoir1(iar);

    /* routed to an absent CPU (Aff0 = 7): not delivered to CPU 0 */
    gic_route_spi(40, 7);
    CHECK("GICD_IROUTER40 = Aff0 7", readq(GICD_BASE + GICD_IROUTER + 8 * 40), 7);
    gic_set_pending(40);
    CHECK("SPI 40 routed away: IAR1 1023", icc_iar1(), INTID_SPURIOUS);
    CHECK("SPI 40 routed away: still pending", state(40), 0x01);
    gic_route_spi(40, 0);
    iar = icc_iar1();
    CHECK("SPI 40 routed back to CPU 0: acked", iar, 40);
    icc_eoir1(iar);

    /* group 0 is not acked by IAR1 */
    gicd_write(GICD_IGROUPR + 4, ~(1U << (33 - 32)));
    gic_set_pending(33);
    CHECK("group 0 SPI 33: IAR1 1023", icc_iar1(), INTID_SPURIOUS);
    gic_clear_pending(33);
    gicd_write(GICD_IGROUPR + 4, 0xffffffff);

    /* exception form: edge SPI 34 and level SPI 37, IRQs unmasked */
    set_irq_handler(irq_handler);
    irq_enable();
    gic_set_pending(34);
    gic_set_pending(37);
    for (int spins = 0; irq_n < 2 && spins < 1000000; spins++)
        wfi();
    irq_disable();
    CHECK("IRQ handler: 2 interrupts", irq_n, 2);
    CHECK("IRQ handler: SPI 34 first (priority 0x40)", irq_log[0], 34);
    CHECK("IRQ handler: then SPI 37", irq_log[1], 37);
    finish();
}
