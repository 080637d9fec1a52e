/* SGI-to-self round trip, polled (IRQs masked) and by IRQ exception, timed with CNTVCT. */
#include "guest.h"

#define N 200000UL

static volatile u64 irq_count;
static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    u32 iar = icc_iar1();
    if (iar != INTID_SPURIOUS) {
        irq_count++;
        icc_eoir1(iar);
    }
}

int main(void)
{
    printf("bench_sgi: SGI to self round trip, N=%lu\n", N);
    gic_dist_init();
    gic_cpu_init();
    writel(gicr_self() + GICR_ISENABLER0, 0xffff);
    u64 target = 1UL << cpu_id();

    /* polled: SGI1R write, isb, IAR1, EOIR1 */
    u64 bad = 0;
    u64 t0 = cntvct();
    for (u64 i = 0; i < N; i++) {
        write_sysreg(S3_0_C12_C11_5, (1UL << 24) | target);
        isb();
        u32 iar = icc_iar1();
        if (iar != 1) bad++;
        write_sysreg(S3_0_C12_C12_1, iar);
        isb();
    }
    u64 t1 = cntvct();
    CHECK("polled: every IAR1 returned SGI 1", bad, 0);
    bench_line("sgi_self_poll", ticks_to_ns(t1 - t0) / N, N);

    /* IRQ exception: SGI1R write, isb; the handler acks and EOIs */
    set_irq_handler(irq_handler);
    irq_enable();
    u64 missed = 0;
    t0 = cntvct();
    for (u64 i = 0; i < N; i++) {
        write_sysreg(S3_0_C12_C11_5, (1UL << 24) | target);
        isb();
        u64 spins = 0;
        while (irq_count <= i && ++spins < 1000000)
            ;
        if (irq_count <= i) missed++;
    }
    t1 = cntvct();
    irq_disable();
    CHECK("irq: every SGI taken", irq_count, N);
    CHECK("irq: no SGI missed its wait", missed, 0);
    bench_line("sgi_self_irq", ticks_to_ns(t1 - t0) / N, N);

    /* a register read for scale */
    t0 = cntvct();
    u32 acc = 0;
    for (u64 i = 0; i < N; i++)
        acc += gicd_read(GICD_TYPER);
    t1 = cntvct();
    CHECK("GICD_TYPER stable", acc, (u32)(gicd_read(GICD_TYPER) * N));
    bench_line("gicd_typer_read", ticks_to_ns(t1 - t0) / N, N);
    finish();
}
