/* GICv2 priorities through the memory-mapped CPU interface: acknowledge order by priority,
 * running priority (GICC_RPR) through nested acknowledges, no preemption by a lower or equal
 * priority, GICC_PMR masking (a priority equal to the mask is masked, 0 masks everything), EOI in
 * reverse order, and nested IRQ exceptions (preemption) as seen by the handler. */
#include "guest.h"

static volatile u32 trace[16], ntrace;

static void note(u32 v)
{
    if (ntrace < 16)
        trace[ntrace] = v;
    ntrace++;
}

static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    u32 iar = gicc_iar();
    if ((iar & 0x3ff) == INTID_SPURIOUS)
        return;
    note(100 + iar);                      /* enter */
    if (iar == 1) {
        gicv2_send_sgi(3, 0, SGIR_SELF);  /* 0x80 and 0x40: both preempt SGI 1 (0xc0) once IRQs */
        gicv2_send_sgi(2, 0, SGIR_SELF);  /* are unmasked, the higher one first */
        irq_enable();
        for (int i = 0; i < 1000; i++)
            barrier();
        irq_disable();
    }
    note(200 + iar);                      /* exit */
    gicc_eoir(iar);
}

int main(void)
{
    printf("v2_priority: GICv2 ordering, PMR, running priority, preemption\n");
    gicv2_dist_init();
    gicv2_cpu_init();
    gicc_write(GICC_PMR, 0xf0);
    static const u8 prio[4] = {0xc0, 0x40, 0x80, 0x20};   /* SGIs 1..4 */
    for (u32 i = 0; i < 4; i++)
        gicv2_set_priority(1 + i, prio[i]);
    gicv2_set_priority(5, 0x80);
    /* four pending at once: acknowledged (and completed) highest priority first */
    for (u32 i = 1; i <= 4; i++)
        gicv2_send_sgi(i, 0, SGIR_SELF);
    CHECK("four SGIs pending", gicd_read(GICD_ISPENDR) & 0x1e, 0x1e);
    static const u32 want[4] = {4, 2, 3, 1};
    for (u32 k = 0; k < 4; k++) {
        u32 iar = gicc_iar();
        printf("ack %u: SGI %u, RPR 0x%x\n", k, iar, gicc_read(GICC_RPR));
        CHECK("acknowledge order by priority", iar, want[k]);
        gicc_eoir(iar);
    }
    /* nested: each new one has a higher priority, so it preempts the running one */
    static const u32 nest[4] = {1, 3, 2, 4};   /* 0xc0, 0x80, 0x40, 0x20 */
    for (u32 k = 0; k < 4; k++) {
        gicv2_send_sgi(nest[k], 0, SGIR_SELF);
        u32 iar = gicc_iar();
        printf("nested ack %u: SGI %u, RPR 0x%x\n", k, iar, gicc_read(GICC_RPR));
        CHECK("the higher priority preempts", iar, nest[k]);
    }
    CHECK("all four active", gicd_read(GICD_ISACTIVER) & 0x1e, 0x1e);
    CHECK("IAR 1023 with all active", gicc_iar(), INTID_SPURIOUS);
    for (int k = 3; k >= 0; k--) {
        gicc_eoir(nest[k]);
        printf("EOIR SGI %u: RPR 0x%x, active 0x%x\n", nest[k], gicc_read(GICC_RPR), gicd_read(GICD_ISACTIVER) & 0x1e);
    }
    CHECK("RPR idle", gicc_read(GICC_RPR), 0xff);

    /* an equal or lower priority does not preempt the running one */
    gicv2_send_sgi(3, 0, SGIR_SELF);           /* 0x80 */
    u32 a = gicc_iar();
    CHECK("SGI 3 (0x80)", a, 3);
    gicv2_send_sgi(5, 0, SGIR_SELF);           /* 0x80: equal */
    gicv2_send_sgi(1, 0, SGIR_SELF);           /* 0xc0: lower */
    CHECK("equal and lower priorities wait", gicc_iar(), INTID_SPURIOUS);
    gicv2_send_sgi(2, 0, SGIR_SELF);           /* 0x40: higher */
    CHECK("a higher one preempts", gicc_iar(), 2);
    gicc_eoir(2);
    gicc_eoir(a);
    CHECK("then SGI 5", gicc_iar(), 5);
    gicc_eoir(5);
    CHECK("then SGI 1", gicc_iar(), 1);
    gicc_eoir(1);

    /* PMR masking: signalled only if priority < PMR */
    gicc_write(GICC_PMR, 0x80);
    gicv2_send_sgi(5, 0, SGIR_SELF);
    CHECK("PMR 0x80: SGI 5 (0x80) masked", gicc_iar(), INTID_SPURIOUS);
    gicv2_send_sgi(2, 0, SGIR_SELF);
    a = gicc_iar();
    CHECK("PMR 0x80: SGI 2 (0x40) delivered", a, 2);
    gicc_eoir(a);
    gicc_write(GICC_PMR, 0x88);
    a = gicc_iar();
    CHECK("PMR 0x88: SGI 5 delivered", a, 5);
    gicc_eoir(a);
    gicc_write(GICC_PMR, 0x00);
    gicv2_send_sgi(4, 0, SGIR_SELF);           /* 0x20 */
    CHECK("PMR 0: even 0x20 masked", gicc_iar(), INTID_SPURIOUS);
    CHECK("but pending", gicv2_is_pending(4), 1);
    gicc_write(GICC_PMR, 0xf0);
    a = gicc_iar();
    CHECK("PMR 0xf0: SGI 4", a, 4);
    gicc_eoir(a);

    /* preemption through IRQ exceptions */
    set_irq_handler(irq_handler);
    ntrace = 0;
    gicv2_send_sgi(1, 0, SGIR_SELF);
    irq_enable();
    for (int i = 0; i < 1000 && ntrace < 6; i++)
        barrier();
    irq_disable();
    printf("nesting:");
    for (u32 i = 0; i < ntrace && i < 16; i++)
        printf(" %s%u", trace[i] >= 200 ? "exit" : "enter", trace[i] % 100);
    printf("\n");
    CHECK("enter1 enter2 exit2 enter3 exit3 exit1", ntrace == 6 && trace[0] == 101 && trace[1] == 102 &&
          trace[2] == 202 && trace[3] == 103 && trace[4] == 203 && trace[5] == 201, 1);
    finish();
}
