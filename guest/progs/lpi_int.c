/* ITS commands: MAPD/MAPC/MAPTI/MAPI, INT, INV/INVALL, DISCARD, MOVI, CLEAR, SYNC; LPI delivery. */
#include "guest.h"

#define DEV 1
#define DEV2 2

static u32 ack_one(void)
{
    u32 iar = icc_iar1();
    if (iar != INTID_SPURIOUS)
        icc_eoir1(iar);
    return iar;
}

static volatile u32 irq_seen[8], irq_n;
static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    u32 iar = icc_iar1();
    if (iar == INTID_SPURIOUS)
        return;
    if (irq_n < 8) irq_seen[irq_n] = iar;
    irq_n++;
    icc_eoir1(iar);
}

int main(void)
{
    printf("lpi_int: ITS commands and LPI delivery\n");
    gic_dist_init();
    gic_cpu_init();
    its_init();
    gic_lpi_cpu_init();
    CHECK("GITS_CTLR.Enabled", readl(GITS_BASE + GITS_CTLR) & 1, 1);
    CHECK("GICR_CTLR.EnableLPIs", readl(gicr_self() + GICR_CTLR) & 1, 1);
    printf("GICR_PROPBASER.IDbits=%lu\n", (readq(gicr_self() + GICR_PROPBASER) & 0x1f) + 1);

    its_mapd(DEV, 4, 1);
    its_mapc(0, 0, 1);
    its_mapc(1, 0, 1);
    for (u32 e = 0; e < 3; e++) {
        its_mapti(DEV, e, LPI_BASE + e, 0);
        lpi_set_config(LPI_BASE + e, LPI_PROP_DEFAULT | LPI_PROP_ENABLED);
    }
    its_invall(0);
    its_sync(0);
    CHECK("CREADR caught up with CWRITER", its_creadr(), its_cwriter());
    CHECK("nothing pending after mapping", icc_iar1(), INTID_SPURIOUS);

    its_int(DEV, 0);
    u32 iar = icc_iar1();
    CHECK("INT dev1 ev0 -> LPI 8192", iar, 8192);
    CHECK("RPR = 0xa0 while LPI active", icc_rpr() & 0xff, 0xa0);
    CHECK("second IAR1 1023", icc_iar1(), INTID_SPURIOUS);
    icc_eoir1(iar);
    CHECK("IAR1 1023 after EOIR1", icc_iar1(), INTID_SPURIOUS);
    CHECK("RPR idle", icc_rpr() & 0xff, 0xff);

    /* priorities from the property table */
    lpi_set_config(8193, 0x40 | 2 | LPI_PROP_ENABLED);
    its_inv(DEV, 1);
    lpi_set_config(8194, 0x80 | 2 | LPI_PROP_ENABLED);
    its_inv(DEV, 2);
    its_int(DEV, 2);
    its_int(DEV, 1);
    its_int(DEV, 0);
    u32 a = ack_one(), b = ack_one(), c = ack_one();
    printf("ack order: %u %u %u\n", a, b, c);
    CHECK("LPI priority order 8193 (0x40), 8194 (0x80), 8192 (0xa0)",
          ((u64)a << 32) | ((u64)b << 16) | c, ((u64)8193 << 32) | ((u64)8194 << 16) | 8192);
    CHECK("IAR1 1023 after all", icc_iar1(), INTID_SPURIOUS);

    /* INT twice before ack: one delivery */
    its_int(DEV, 0);
    its_int(DEV, 0);
    CHECK("INT twice: one LPI", ack_one(), 8192);
    CHECK("INT twice: then 1023", ack_one(), INTID_SPURIOUS);

    /* disabled in the property table */
    lpi_set_config(8192, LPI_PROP_DEFAULT);
    its_inv(DEV, 0);
    its_int(DEV, 0);
    CHECK("disabled LPI: INT delivers nothing", icc_iar1(), INTID_SPURIOUS);
    lpi_set_config(8192, LPI_PROP_DEFAULT | LPI_PROP_ENABLED);
    its_inv(DEV, 0);
    CHECK("re-enabled + INV: pending LPI delivered", ack_one(), 8192);
    CHECK("then 1023", icc_iar1(), INTID_SPURIOUS);

    /* same, re-enabled with INVALL */
    lpi_set_config(8192, LPI_PROP_DEFAULT);
    its_invall(0);
    its_int(DEV, 0);
    CHECK("disabled (INVALL): nothing", icc_iar1(), INTID_SPURIOUS);
    lpi_set_config(8192, LPI_PROP_DEFAULT | LPI_PROP_ENABLED);
    its_invall(0);
    its_sync(0);
    CHECK("re-enabled + INVALL: delivered", ack_one(), 8192);

    /* CLEAR removes the pending state */
    lpi_set_config(8194, 0x80 | 2);
    its_inv(DEV, 2);
    its_int(DEV, 2);
    its_clear(DEV, 2);
    lpi_set_config(8194, 0x80 | 2 | LPI_PROP_ENABLED);
    its_inv(DEV, 2);
    CHECK("CLEAR then enable: nothing", icc_iar1(), INTID_SPURIOUS);
    its_int(DEV, 2);
    CHECK("INT after CLEAR works", ack_one(), 8194);

    /* DISCARD */
    its_discard(DEV, 0);
    its_int(DEV, 0);
    CHECK("DISCARD then INT: nothing", icc_iar1(), INTID_SPURIOUS);
    CHECK("queue not stalled after INT on unmapped event", its_creadr() & 1, 0);
    its_mapti(DEV, 0, 8200, 0);
    lpi_set_config(8200, LPI_PROP_DEFAULT | LPI_PROP_ENABLED);
    its_inv(DEV, 0);
    its_int(DEV, 0);
    CHECK("re-MAPTI ev0 -> LPI 8200", ack_one(), 8200);

    /* MOVI to collection 1 (also CPU 0) */
    its_movi(DEV, 1, 1);
    its_sync(0);
    its_int(DEV, 1);
    CHECK("MOVI ev1 to collection 1: delivered", ack_one(), 8193);
    its_mapc(1, 0, 0);   /* unmap collection 1 */
    its_int(DEV, 1);
    CHECK("collection 1 unmapped: nothing", icc_iar1(), INTID_SPURIOUS);
    its_mapc(1, 0, 1);
    its_int(DEV, 1);
    CHECK("collection 1 remapped: delivered", ack_one(), 8193);

    /* MAPI: LPI = EventID (needs 14 event bits) */
    its_mapd(DEV2, 14, 1);
    its_mapi(DEV2, 8300, 0);
    lpi_set_config(8300, LPI_PROP_DEFAULT | LPI_PROP_ENABLED);
    its_inv(DEV2, 8300);
    its_int(DEV2, 8300);
    CHECK("MAPI dev2 ev8300 -> LPI 8300", ack_one(), 8300);
    its_int(DEV2, 8301);
    CHECK("unmapped event 8301: nothing", icc_iar1(), INTID_SPURIOUS);

    /* MAPD V=0 */
    its_mapd(DEV, 4, 0);
    its_int(DEV, 1);
    CHECK("MAPD V=0 then INT: nothing", icc_iar1(), INTID_SPURIOUS);
    its_int(7, 0);
    CHECK("never-mapped device: nothing", icc_iar1(), INTID_SPURIOUS);
    CHECK("queue not stalled", its_creadr() & 1, 0);
    CHECK("CREADR == CWRITER", its_creadr(), its_cwriter());

    /* exception form */
    set_irq_handler(irq_handler);
    irq_enable();
    its_int(DEV2, 8300);
    for (int spins = 0; !irq_n && spins < 1000000; spins++)
        wfi();
    irq_disable();
    CHECK("IRQ handler: one LPI", irq_n, 1);
    CHECK("IRQ handler: LPI 8300", irq_seen[0], 8300);
    finish();
}
