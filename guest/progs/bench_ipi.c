/* IPI round trip between two CPUs, timed with CNTVCT by CPU 0: an SGI to CPU 1, whose IRQ handler
 * acknowledges it and bumps a counter that CPU 0 busy-waits on. CPU 1 either spins (IRQs enabled,
 * a busy loop: the target is running, not waiting) or waits in WFI. On a machine that runs its
 * vCPUs on one thread, the spinning form measures how soon a kicked, running vCPU gets to run. */
#include "guest.h"

#define N_SPIN 2000UL
#define N_WFI 2000UL

static volatile u64 got;
static volatile u32 mode; /* 0 start, 1 spin, 2 wfi, 3 done */
static volatile u32 ready;

static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    u32 iar = icc_iar1();
    if (iar == INTID_SPURIOUS)
        return;
    got++;
    icc_eoir1(iar);
}

static void secondary(unsigned cpu)
{
    (void)cpu;
    gic_cpu_init();
    writel(gicr_self() + GICR_ISENABLER0, 0xffff);
    set_irq_handler(irq_handler);
    dsb_sy();
    ready = 1;
    irq_enable();
    u64 spins = 0;
    while (READ_ONCE(mode) < 2)
        spins++;
    while (READ_ONCE(mode) < 3)
        wfi();
    irq_disable();
}

static u64 round_trips(u64 n, u64 *missed)
{
    u64 t0 = cntvct();
    for (u64 i = 0; i < n; i++) {
        u64 want = READ_ONCE(got) + 1;
        gic_send_sgi_cpu(1, 1);
        u64 spins = 0;
        while (READ_ONCE(got) < want && ++spins < 100000000UL)
            ;
        if (READ_ONCE(got) < want)
            (*missed)++;
    }
    return cntvct() - t0;
}

int main(void)
{
    printf("bench_ipi: SGI round trip to a spinning and to a waiting CPU, N=%lu/%lu\n", N_SPIN, N_WFI);
    gic_dist_init();
    gic_cpu_init();
    CHECK("CPU_ON", psci_cpu_on(1, secondary), 0);
    for (u64 s = 0; !READ_ONCE(ready) && s < 100000000UL; s++)
        ;
    CHECK("CPU 1 ready", ready, 1);
    u64 missed = 0;
    mode = 1;
    dsb_sy();
    u64 t = round_trips(N_SPIN, &missed);
    CHECK("spinning target: every IPI handled", missed, 0);
    bench_line("ipi_spin", ticks_to_ns(t) / N_SPIN, N_SPIN);
    mode = 2;
    dsb_sy();
    /* let CPU 1 reach its WFI loop */
    for (volatile u64 s = 0; s < 100000; s++)
        ;
    missed = 0;
    t = round_trips(N_WFI, &missed);
    CHECK("waiting target: every IPI handled", missed, 0);
    bench_line("ipi_wfi", ticks_to_ns(t) / N_WFI, N_WFI);
    mode = 3;
    dsb_sy();
    finish();
}
