/* MSIs by CPU writes to GITS_TRANSLATER (DeviceID 0 for CPU writes on QEMU virt). */
#include "guest.h"

static u32 ack_one(void)
{
    u32 iar = icc_iar1();
    if (iar != INTID_SPURIOUS)
        icc_eoir1(iar);
    return iar;
}

int main(void)
{
    printf("lpi_translater: GITS_TRANSLATER writes\n");
    gic_dist_init();
    gic_cpu_init();
    its_init();
    gic_lpi_cpu_init();
    its_mapd(0, 5, 1);     /* 32 events */
    its_mapc(0, 0, 1);
    for (u32 e = 0; e < 8; e++) {
        its_mapti(0, e, 8192 + 16 + e, 0);
        lpi_set_config(8192 + 16 + e, (u8)((0x20 + 0x10 * e) | 2 | LPI_PROP_ENABLED));
    }
    its_invall(0);
    its_sync(0);

    its_translater_write(0);
    u32 iar = icc_iar1();
    CHECK("TRANSLATER ev0 -> LPI 8208", iar, 8208);
    CHECK("second IAR1 1023", icc_iar1(), INTID_SPURIOUS);
    icc_eoir1(iar);

    /* several events; distinct priorities make the order architectural */
    for (u32 e = 7; e >= 3; e--)
        its_translater_write(e);
    printf("acked:");
    u32 got = 0;
    for (;;) {
        u32 i = ack_one();
        if (i == INTID_SPURIOUS)
            break;
        printf(" %u", i);
        got = got * 16 + (i - 8208);
    }
    printf("\n");
    CHECK("5 events acked by priority", got, 0x34567);

    /* the same event twice before ack: one LPI */
    its_translater_write(1);
    its_translater_write(1);
    CHECK("ev1 twice: one LPI 8209", ack_one(), 8209);
    CHECK("then 1023", ack_one(), INTID_SPURIOUS);

    /* unmapped event inside the device's range, and one beyond it */
    its_translater_write(20);
    CHECK("unmapped ev20: nothing", icc_iar1(), INTID_SPURIOUS);
    its_translater_write(100);
    CHECK("ev100 beyond 5 event bits: nothing", icc_iar1(), INTID_SPURIOUS);
    CHECK("GITS_CTLR still enabled", readl(GITS_BASE + GITS_CTLR) & 1, 1);

    /* remapping via DISCARD + MAPTI is seen by the next write */
    its_discard(0, 2);
    its_translater_write(2);
    CHECK("discarded ev2: nothing", icc_iar1(), INTID_SPURIOUS);
    its_mapti(0, 2, 9000, 0);
    lpi_set_config(9000, LPI_PROP_DEFAULT | LPI_PROP_ENABLED);
    its_inv(0, 2);
    its_translater_write(2);
    CHECK("ev2 remapped -> LPI 9000", ack_one(), 9000);

    /* ITS disabled: writes are dropped */
    writel(GITS_BASE + GITS_CTLR, 0);
    while (!(readl(GITS_BASE + GITS_CTLR) & GITS_CTLR_QUIESCENT))
        ;
    its_translater_write(0);
    CHECK("ITS disabled: TRANSLATER write dropped", icc_iar1(), INTID_SPURIOUS);
    writel(GITS_BASE + GITS_CTLR, GITS_CTLR_ENABLED);
    its_translater_write(0);
    CHECK("ITS re-enabled: delivered", ack_one(), 8208);

    /* 100 events in a row, each acked */
    u32 okc = 0;
    for (u32 k = 0; k < 100; k++) {
        its_translater_write(k % 8 == 2 ? 3 : k % 8);
        u32 i = ack_one();
        u32 exp = 8208 + (k % 8 == 2 ? 3 : k % 8);
        if (i == exp) okc++;
    }
    CHECK("100 write/ack round trips", okc, 100);
    finish();
}
