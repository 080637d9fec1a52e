/* LPI round trips: GITS_TRANSLATER write -> IAR1 -> EOIR1, and ITS INT command -> IAR1 -> EOIR1. */
#include "guest.h"

#define N_TRANS 20000UL
#define N_INT 5000UL

int main(void)
{
    printf("bench_lpi: translater N=%lu, INT N=%lu\n", N_TRANS, N_INT);
    gic_dist_init();
    gic_cpu_init();
    its_init();
    gic_lpi_cpu_init();
    its_mapd(0, 4, 1);
    its_mapd(1, 4, 1);
    its_mapc(0, 0, 1);
    its_mapti(0, 0, 8192, 0);
    its_mapti(1, 0, 8193, 0);
    lpi_set_config(8192, LPI_PROP_DEFAULT | LPI_PROP_ENABLED);
    lpi_set_config(8193, LPI_PROP_DEFAULT | LPI_PROP_ENABLED);
    its_invall(0);
    its_sync(0);

    u64 bad = 0;
    u64 t0 = cntvct();
    for (u64 i = 0; i < N_TRANS; i++) {
        its_translater_write(0);
        u32 iar;
        u64 spins = 0;
        do {
            iar = icc_iar1();
        } while (iar == INTID_SPURIOUS && ++spins < 100000);
        if (iar != 8192) bad++;
        icc_eoir1(iar);
    }
    u64 t1 = cntvct();
    CHECK("translater: every ack was LPI 8192", bad, 0);
    bench_line("lpi_translater", ticks_to_ns(t1 - t0) / N_TRANS, N_TRANS);

    bad = 0;
    t0 = cntvct();
    for (u64 i = 0; i < N_INT; i++) {
        its_int(1, 0);
        u32 iar;
        u64 spins = 0;
        do {
            iar = icc_iar1();
        } while (iar == INTID_SPURIOUS && ++spins < 100000);
        if (iar != 8193) bad++;
        icc_eoir1(iar);
    }
    t1 = cntvct();
    CHECK("INT: every ack was LPI 8193", bad, 0);
    bench_line("lpi_int", ticks_to_ns(t1 - t0) / N_INT, N_INT);
    finish();
}
