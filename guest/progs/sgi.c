/* SGIs to self: all 16, IAR/EOIR values, pending/active bits, spurious 1023, EOImode=1 + DIR. */
#include "guest.h"

int main(void)
{
    char what[96];
    gic_dist_init();
    gic_cpu_init();
    u64 rd = gicr_self();
    printf("sgi: %u SGIs to self\n", 16);
    writel(rd + GICR_ISENABLER0, 0xffff);
    CHECK("GICR_ISENABLER0 SGIs enabled", readl(rd + GICR_ISENABLER0) & 0xffff, 0xffff);
    CHECK("IAR1 idle is 1023", icc_iar1(), INTID_SPURIOUS);

    for (u32 i = 0; i < 16; i++) {
        gic_send_sgi_self(i);
        snprintf(what, sizeof what, "SGI %u pending after SGI1R", i);
        CHECK(what, gicr_sgi_pending0(), 1U << i);
        u32 iar = icc_iar1();
        snprintf(what, sizeof what, "SGI %u IAR1", i);
        CHECK(what, iar, i);
        snprintf(what, sizeof what, "SGI %u active not pending after ack", i);
        CHECK(what, ((u64)gicr_sgi_active0() << 32) | gicr_sgi_pending0(), (u64)(1U << i) << 32);
        snprintf(what, sizeof what, "SGI %u second IAR1 while active is 1023", i);
        CHECK(what, icc_iar1(), INTID_SPURIOUS);
        icc_eoir1(iar);
        snprintf(what, sizeof what, "SGI %u idle after EOIR1", i);
        CHECK(what, ((u64)gicr_sgi_active0() << 32) | gicr_sgi_pending0(), 0);
    }

    /* all 16 pending at once, equal priority: acked in INTID order */
    for (u32 i = 0; i < 16; i++)
        gic_send_sgi_self(15 - i);
    CHECK("16 SGIs pending at once", gicr_sgi_pending0(), 0xffff);
    u32 order_ok = 1;
    for (u32 i = 0; i < 16; i++) {
        u32 iar = icc_iar1();
        if (iar != i)
            order_ok = 0;
        icc_eoir1(iar);
    }
    check_true("equal priority SGIs acked lowest INTID first", order_ok);
    CHECK("all idle", gicr_sgi_pending0() | gicr_sgi_active0(), 0);

    /* pending bit via GICR_ISPENDR0 / ICPENDR0 */
    writel(rd + GICR_ISPENDR0, 1U << 5);
    CHECK("ISPENDR0 write sets SGI 5 pending", gicr_sgi_pending0(), 1U << 5);
    writel(rd + GICR_ICPENDR0, 1U << 5);
    CHECK("ICPENDR0 write clears SGI 5", gicr_sgi_pending0(), 0);
    CHECK("IAR1 after ICPENDR0 is 1023", icc_iar1(), INTID_SPURIOUS);

    /* disabled SGI stays pending and is not signalled */
    writel(rd + GICR_ICENABLER0, 1U << 3);
    gicr_wait_rwp(rd);
    gic_send_sgi_self(3);
    CHECK("disabled SGI 3 pending", gicr_sgi_pending0(), 1U << 3);
    CHECK("disabled SGI 3 not acked (1023)", icc_iar1(), INTID_SPURIOUS);
    writel(rd + GICR_ISENABLER0, 1U << 3);
    CHECK("re-enabled SGI 3 acked", icc_iar1(), 3);
    icc_eoir1(3);

    /* EOImode = 1: EOIR drops priority only, DIR deactivates */
    icc_set_ctlr(icc_ctlr() | ICC_CTLR_EOIMODE);
    CHECK("ICC_CTLR_EL1.EOImode set", icc_ctlr() & ICC_CTLR_EOIMODE, ICC_CTLR_EOIMODE);
    gic_send_sgi_self(7);
    u32 iar = icc_iar1();
    CHECK("EOImode1 IAR1", iar, 7);
    CHECK("EOImode1 running priority 0xa0", icc_rpr() & 0xff, 0xa0);
    icc_eoir1(iar);
    CHECK("EOImode1 still active after EOIR1", gicr_sgi_active0(), 1U << 7);
    CHECK("EOImode1 running priority idle after EOIR1", icc_rpr() & 0xff, 0xff);
    gic_send_sgi_self(7);
    CHECK("EOImode1 SGI 7 pending+active", ((u64)gicr_sgi_active0() << 32) | gicr_sgi_pending0(), ((u64)1 << (32 + 7)) | (1U << 7));
    CHECK("EOImode1 active+pending SGI not acked", icc_iar1(), INTID_SPURIOUS);
    icc_dir(7);
    CHECK("EOImode1 DIR deactivates", gicr_sgi_active0(), 0);
    iar = icc_iar1();
    CHECK("EOImode1 pending SGI 7 acked after DIR", iar, 7);
    icc_eoir1(iar);
    icc_dir(iar);
    CHECK("EOImode1 idle", gicr_sgi_active0() | gicr_sgi_pending0(), 0);
    icc_set_ctlr(icc_ctlr() & ~(u64)ICC_CTLR_EOIMODE);

    /* SGI by IRQ exception */
    finish();
}
