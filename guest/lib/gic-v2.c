/* GICv2 distributor and CPU interface (QEMU virt gic-version=2: GICD 0x08000000, GICC 0x08010000),
 * all memory-mapped: the guest side of vgic's gicVersion 2, in the spirit of kvm-unit-tests'
 * lib/arm/gic-v2.c. Every interrupt is Group 0, signalled as IRQ (GICC_CTLR.FIQEn = 0). */
#include "guest.h"

u32 gicv2_num_irqs(void)
{
    u32 n = ((gicd_read(GICD_TYPER) & 0x1f) + 1) * 32;
    return n > 1020 ? 1020 : n;
}

void gicv2_dist_init(void)
{
    gicd_write(GICD_CTLR, 0);
    u32 n = gicv2_num_irqs();
    for (u32 i = 32; i < n; i += 32) {
        gicd_write(GICD_IGROUPR + i / 8, 0);
        gicd_write(GICD_ICENABLER + i / 8, 0xffffffff);
        gicd_write(GICD_ICPENDR + i / 8, 0xffffffff);
        gicd_write(GICD_ICACTIVER + i / 8, 0xffffffff);
    }
    for (u32 i = 32; i < n; i += 4) {
        gicd_write(GICD_IPRIORITYR + i, 0xa0a0a0a0);
        gicd_write(GICD_ITARGETSR + i, 0x01010101);   /* CPU 0 */
    }
    for (u32 i = 32; i < n; i += 16)
        gicd_write(GICD_ICFGR + i / 4, 0);   /* level-sensitive */
    gicd_write(GICD_CTLR, 1);                /* Enable (Group 0) */
}

/* This CPU's banked part: SGIs enabled, PPIs disabled, priorities 0xa0, Group 0, and its interface
 * on with PMR 0xf0. */
void gicv2_cpu_init(void)
{
    gicd_write(GICD_IGROUPR, 0);
    gicd_write(GICD_ICENABLER, 0xffff0000);
    gicd_write(GICD_ISENABLER, 0x0000ffff);
    gicd_write(GICD_ICACTIVER, 0xffffffff);
    gicd_write(GICD_CPENDSGIR, 0xffffffff);
    gicd_write(GICD_CPENDSGIR + 4, 0xffffffff);
    gicd_write(GICD_CPENDSGIR + 8, 0xffffffff);
    gicd_write(GICD_CPENDSGIR + 12, 0xffffffff);
    gicd_write(GICD_ICPENDR, 0xffff0000);
    for (u32 i = 0; i < 32; i += 4)
        gicd_write(GICD_IPRIORITYR + i, 0xa0a0a0a0);
    gicc_write(GICC_PMR, 0xf0);
    gicc_write(GICC_BPR, 0);                 /* the minimum the GIC allows */
    gicc_write(GICC_CTLR, GICC_CTLR_ENABLE_GRP0);
}

static u64 bit_reg(u32 off, u32 intid) { return GICD_BASE + off + (intid / 32) * 4; }

void gicv2_enable_irq(u32 intid) { writel(bit_reg(GICD_ISENABLER, intid), 1U << (intid % 32)); }
void gicv2_disable_irq(u32 intid) { writel(bit_reg(GICD_ICENABLER, intid), 1U << (intid % 32)); }
void gicv2_set_pending(u32 intid) { writel(bit_reg(GICD_ISPENDR, intid), 1U << (intid % 32)); }
void gicv2_clear_pending(u32 intid) { writel(bit_reg(GICD_ICPENDR, intid), 1U << (intid % 32)); }
void gicv2_clear_active(u32 intid) { writel(bit_reg(GICD_ICACTIVER, intid), 1U << (intid % 32)); }
int gicv2_is_pending(u32 intid) { return (readl(bit_reg(GICD_ISPENDR, intid)) >> (intid % 32)) & 1; }
int gicv2_is_active(u32 intid) { return (readl(bit_reg(GICD_ISACTIVER, intid)) >> (intid % 32)) & 1; }

void gicv2_set_priority(u32 intid, u8 prio) { writeb(GICD_BASE + GICD_IPRIORITYR + intid, prio); }
void gicv2_set_targets(u32 intid, u8 mask) { writeb(GICD_BASE + GICD_ITARGETSR + intid, mask); }

void gicv2_set_edge(u32 intid, int edge)
{
    u64 a = GICD_BASE + GICD_ICFGR + (intid / 16) * 4;
    unsigned sh = (intid % 16) * 2 + 1;
    u32 v = readl(a);
    v = edge ? (v | (1U << sh)) : (v & ~(1U << sh));
    writel(a, v);
}

/* GICD_SGIR: TargetListFilter [25:24] (0 list, 1 all but self, 2 self), CPUTargetList [23:16]. */
void gicv2_send_sgi(u32 sgi, u8 targets, u32 filter)
{
    dsb_sy();
    gicd_write(GICD_SGIR, (filter << 24) | ((u32)targets << 16) | (sgi & 0xf));
}
