/* GICv2 SGIs to self through GICD_SGIR (TargetListFilter 2), the CPU interface as MMIO (GICC):
 * IAR/EOIR values, pending/active bits, spurious 1023, SGIs pending from several sources at once
 * (GICD_SPENDSGIR/CPENDSGIR, the source CPU in IAR[12:10]), running priority, EOImode 1 + DIR. */
#include "guest.h"

static u64 pend_act(u32 sgi)
{
    return ((u64)gicv2_is_active(sgi) << 4) | (u64)gicv2_is_pending(sgi);
}

int main(void)
{
    char what[96];
    printf("v2_sgi: GICv2, %u SGIs to self\n", 16);
    gicv2_dist_init();
    gicv2_cpu_init();
    u32 typer = gicd_read(GICD_TYPER);
    CHECK("GICD_TYPER.CPUNumber (1 CPU)", (typer >> 5) & 7, 0);
    CHECK("GICD_TYPER.SecurityExtn", (typer >> 10) & 1, 0);
    CHECK("ID_AA64PFR0_EL1.GIC: no system-register interface", (read_sysreg(id_aa64pfr0_el1) >> 24) & 0xf, 0);
    mask_line("GICD_TYPER.ITLinesNumber", typer & 0x1f);
    mask_line("GICD_IIDR", gicd_read(GICD_IIDR));
    mask_line("GICC_IIDR", gicc_read(GICC_IIDR));
    CHECK("ITARGETSR0 of a uniprocessor is RAZ", gicd_read(GICD_ITARGETSR), 0);
    CHECK("SGIs enabled", gicd_read(GICD_ISENABLER) & 0xffff, 0xffff);
    CHECK("GICC_IAR idle is 1023", gicc_iar(), INTID_SPURIOUS);
    CHECK("GICC_RPR idle", gicc_read(GICC_RPR), 0xff);

    for (u32 i = 0; i < 16; i++) {
        gicv2_send_sgi(i, 0, SGIR_SELF);
        snprintf(what, sizeof what, "SGI %u pending after GICD_SGIR (act<<4|pend)", i);
        CHECK(what, pend_act(i), 0x01);
        u32 iar = gicc_iar();
        snprintf(what, sizeof what, "SGI %u IAR (source CPU 0)", i);
        CHECK(what, iar, i);
        snprintf(what, sizeof what, "SGI %u active after ack", i);
        CHECK(what, pend_act(i), 0x10);
        snprintf(what, sizeof what, "SGI %u running priority", i);
        CHECK(what, gicc_read(GICC_RPR), 0xa0);
        CHECK("second IAR while active is 1023", gicc_iar(), INTID_SPURIOUS);
        gicc_eoir(iar);
        snprintf(what, sizeof what, "SGI %u idle after EOIR", i);
        CHECK(what, pend_act(i), 0);
    }

    /* all 16 at once, equal priority: lowest INTID first */
    for (u32 i = 0; i < 16; i++)
        gicv2_send_sgi(15 - i, 0, SGIR_SELF);
    CHECK("16 SGIs pending at once", gicd_read(GICD_ISPENDR) & 0xffff, 0xffff);
    u32 order_ok = 1;
    for (u32 i = 0; i < 16; i++) {
        u32 iar = gicc_iar();
        if (iar != i)
            order_ok = 0;
        gicc_eoir(iar);
    }
    check_true("equal priority SGIs acked lowest INTID first", order_ok);

    /* a higher priority SGI is taken first */
    gicv2_set_priority(9, 0x40);
    gicv2_send_sgi(3, 0, SGIR_SELF);
    gicv2_send_sgi(9, 0, SGIR_SELF);
    CHECK("priority 0x40 SGI 9 before SGI 3", gicc_iar(), 9);
    CHECK("running priority 0x40", gicc_read(GICC_RPR), 0x40);
    CHECK("SGI 3 does not preempt", gicc_iar(), INTID_SPURIOUS);
    gicc_eoir(9);
    CHECK("then SGI 3", gicc_iar(), 3);
    gicc_eoir(3);
    gicv2_set_priority(9, 0xa0);

    /* GICD_SPENDSGIR: SGI 5 pending from CPUs 0 and 2 */
    writeb(GICD_BASE + GICD_SPENDSGIR + 5, 0x05);
    CHECK("SPENDSGIR byte of SGI 5", readb(GICD_BASE + GICD_SPENDSGIR + 5), 0x05);
    CHECK("CPENDSGIR reads the same", readl(GICD_BASE + GICD_CPENDSGIR + 4), 0x0500);
    CHECK("SGI 5 pending", pend_act(5), 0x01);
    u32 iar = gicc_iar();
    CHECK("first source: CPU 0", iar, 5);
    CHECK("SGI 5 active and still pending from CPU 2", pend_act(5), 0x11);
    CHECK("SPENDSGIR after the first ack", readb(GICD_BASE + GICD_SPENDSGIR + 5), 0x04);
    CHECK("IAR while SGI 5 is active: 1023", gicc_iar(), INTID_SPURIOUS);
    gicc_eoir(iar);
    iar = gicc_iar();
    CHECK("second source: CPU 2 in IAR[12:10]", iar, (2U << 10) | 5);
    gicc_eoir(iar);
    CHECK("SGI 5 idle", pend_act(5), 0);

    /* EOImode = 1: EOIR drops priority only, DIR deactivates */
    gicc_write(GICC_CTLR, gicc_read(GICC_CTLR) | GICC_CTLR_EOIMODE);
    CHECK("GICC_CTLR.EOImode set", gicc_read(GICC_CTLR) & GICC_CTLR_EOIMODE, GICC_CTLR_EOIMODE);
    gicv2_send_sgi(7, 1, SGIR_LIST);
    iar = gicc_iar();
    CHECK("EOImode1 IAR", iar, 7);
    gicc_eoir(iar);
    CHECK("EOImode1 still active after EOIR", pend_act(7), 0x10);
    CHECK("EOImode1 running priority idle after EOIR", gicc_read(GICC_RPR), 0xff);
    gicc_dir(iar);
    CHECK("EOImode1 DIR deactivates", pend_act(7), 0);
    gicc_write(GICC_CTLR, gicc_read(GICC_CTLR) & ~GICC_CTLR_EOIMODE);

    /* a disabled SGI is not signalled */
    gicd_write(GICD_ICENABLER, 1U << 4);
    mask_line("ISENABLER0 after ICENABLER of SGI 4", gicd_read(GICD_ISENABLER) & 0xffff);
    gicd_write(GICD_ISENABLER, 1U << 4);
    gicv2_send_sgi(4, 0, SGIR_SELF);
    CHECK("re-enabled SGI 4 acked", gicc_iar(), 4);
    gicc_eoir(4);
    /* GICD_CPENDSGIR removes sources one by one */
    writel(GICD_BASE + GICD_SPENDSGIR + 4, 0x03 << 16);
    CHECK("SGI 6 from CPUs 0 and 1", readb(GICD_BASE + GICD_SPENDSGIR + 6), 0x03);
    writeb(GICD_BASE + GICD_CPENDSGIR + 6, 0x01);
    CHECK("CPENDSGIR of CPU 0 leaves CPU 1", readb(GICD_BASE + GICD_SPENDSGIR + 6), 0x02);
    CHECK("SGI 6 still pending", pend_act(6), 0x01);
    /* (Nothing is acknowledged after CPENDSGIR: QEMU 7.2 asserts in gic_clear_pending_sgi at
     * the next acknowledge of an SGI whose sources CPENDSGIR changed; so this comes last.) */
    finish();
}
