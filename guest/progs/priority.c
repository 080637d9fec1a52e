/* Priority ordering, PMR masking, running priority, preemption (nested IRQs). */
#include "guest.h"

static volatile u32 log_ev[32], log_n, nested_seen;

static void logv(u32 v) { if (log_n < 32) log_ev[log_n] = v; log_n++; }

/* entry: 0x100|intid, exit: 0x200|intid */
static void irq_handler(struct exc_frame *f, int kind)
{
    (void)f; (void)kind;
    u32 iar = icc_iar1();
    if (iar == INTID_SPURIOUS)
        return;
    logv(0x100 | iar);
    logv(0x300 | (u32)(icc_rpr() & 0xff));
    if (iar == 1) {
        gic_send_sgi_self(3);    /* same priority: must not preempt */
        gic_send_sgi_self(2);    /* higher priority: preempts */
        irq_enable();
        for (int spins = 0; !nested_seen && spins < 1000000; spins++)
            ;
        irq_disable();
    }
    if (iar == 2)
        nested_seen = 1;
    logv(0x200 | iar);
    icc_eoir1(iar);
}

int main(void)
{
    printf("priority: ordering, PMR, running priority, preemption\n");
    gic_dist_init();
    gic_cpu_init();
    u64 rd = gicr_self();
    writel(rd + GICR_ISENABLER0, 0xffff);
    gic_set_priority(1, 0xc0);
    gic_set_priority(2, 0x40);
    gic_set_priority(3, 0xc0);
    gic_set_priority(4, 0x20);
    gic_set_priority(5, 0x80);
    printf("GICR_IPRIORITYR0=0x%x GICR_IPRIORITYR1=0x%x\n", readl(rd + GICR_IPRIORITYR), readl(rd + GICR_IPRIORITYR + 4));

    /* ack order */
    gic_send_sgi_self(1);
    gic_send_sgi_self(5);
    gic_send_sgi_self(2);
    gic_send_sgi_self(4);
    CHECK("4 SGIs pending", gicr_sgi_pending0(), 0x36);
    u32 order = 0;
    for (int k = 0; k < 4; k++) {
        u32 iar = icc_iar1();
        order = (order << 8) | iar;
        icc_eoir1(iar);
    }
    CHECK("acked by priority: 4(0x20) 2(0x40) 5(0x80) 1(0xc0)", order, 0x04020501);

    /* running priority and nested acks without EOI */
    gic_send_sgi_self(1);
    u32 a = icc_iar1();
    CHECK("ack SGI 1", a, 1);
    CHECK("RPR = 0xc0", icc_rpr() & 0xff, 0xc0);
    gic_send_sgi_self(4);
    u32 b = icc_iar1();
    CHECK("higher SGI 4 acked while 1 active", b, 4);
    CHECK("RPR = 0x20", icc_rpr() & 0xff, 0x20);
    gic_send_sgi_self(5);
    CHECK("lower SGI 5 (0x80) not acked while RPR 0x20", icc_iar1(), INTID_SPURIOUS);
    CHECK("active SGIs 1 and 4", gicr_sgi_active0(), 0x12);
    icc_eoir1(b);
    CHECK("EOIR1 4: RPR back to 0xc0", icc_rpr() & 0xff, 0xc0);
    u32 c = icc_iar1();
    CHECK("SGI 5 (0x80) now preempts 1 (0xc0)", c, 5);
    CHECK("RPR = 0x80", icc_rpr() & 0xff, 0x80);
    icc_eoir1(c);
    icc_eoir1(a);
    CHECK("RPR idle 0xff", icc_rpr() & 0xff, 0xff);
    CHECK("no active SGIs", gicr_sgi_active0(), 0);

    /* same priority does not preempt */
    gic_send_sgi_self(1);
    a = icc_iar1();
    gic_send_sgi_self(3);
    CHECK("same priority SGI 3 not acked while 1 active", icc_iar1(), INTID_SPURIOUS);
    icc_eoir1(a);
    a = icc_iar1();
    CHECK("SGI 3 acked after EOI of 1", a, 3);
    icc_eoir1(a);

    /* PMR masking: an interrupt is signalled only if its priority < PMR */
    icc_set_pmr(0x80);
    gic_send_sgi_self(5);   /* 0x80: equal to PMR -> masked */
    CHECK("PMR 0x80: SGI 5 (0x80) masked", icc_iar1(), INTID_SPURIOUS);
    gic_send_sgi_self(2);   /* 0x40 */
    a = icc_iar1();
    CHECK("PMR 0x80: SGI 2 (0x40) delivered", a, 2);
    icc_eoir1(a);
    icc_set_pmr(0x88);
    a = icc_iar1();
    CHECK("PMR 0x88: SGI 5 delivered", a, 5);
    icc_eoir1(a);
    icc_set_pmr(0x00);
    gic_send_sgi_self(4);
    CHECK("PMR 0: everything masked", icc_iar1(), INTID_SPURIOUS);
    icc_set_pmr(0xff);
    a = icc_iar1();
    CHECK("PMR 0xff: SGI 4 delivered", a, 4);
    icc_eoir1(a);

    /* EOI out of order is not allowed: EOIR must be for the highest active priority.
     * Write EOIR in the correct (reverse-of-ack) order and check drop per step. */
    gic_send_sgi_self(1);
    a = icc_iar1();
    gic_send_sgi_self(2);
    b = icc_iar1();
    gic_send_sgi_self(4);
    c = icc_iar1();
    printf("nested acks %u %u %u; RPR=0x%lx\n", a, b, c, icc_rpr() & 0xff);
    icc_eoir1(c);
    printf("after EOIR1 %u: RPR=0x%lx active=0x%x\n", c, icc_rpr() & 0xff, gicr_sgi_active0());
    icc_eoir1(b);
    printf("after EOIR1 %u: RPR=0x%lx active=0x%x\n", b, icc_rpr() & 0xff, gicr_sgi_active0());
    icc_eoir1(a);
    printf("after EOIR1 %u: RPR=0x%lx active=0x%x\n", a, icc_rpr() & 0xff, gicr_sgi_active0());

    /* preemption by exception: handler for SGI 1 raises 3 (same prio) and 2 (higher) */
    set_irq_handler(irq_handler);
    irq_enable();
    gic_send_sgi_self(1);
    for (int spins = 0; log_n < 9 && spins < 1000000; spins++)
        wfi();
    irq_disable();
    printf("nesting order:");
    for (u32 i = 0; i < log_n && i < 32; i++) {
        u32 v = log_ev[i];
        if ((v >> 8) == 1) printf(" enter%u", v & 0xff);
        else if ((v >> 8) == 2) printf(" exit%u", v & 0xff);
        else printf("(rpr=0x%x)", v & 0xff);
    }
    printf("\n");
    static const u32 expect[12] = { 0x101, 0x3c0, 0x102, 0x340, 0x202, 0x201, 0x103, 0x3c0, 0x203 };
    u32 ok = log_n == 9;
    for (int i = 0; i < 9; i++)
        if (log_ev[i] != expect[i]) ok = 0;
    check_true("nested: enter1 enter2 exit2 exit1 enter3 exit3", ok);
    CHECK("idle at end", gicr_sgi_active0() | gicr_sgi_pending0(), 0);
    finish();
}
