/* GICv3 distributor, redistributors, CPU interface. */
#include "guest.h"

static u64 rd_cache[MAX_CPUS];

u64 gicr_base(unsigned cpu)
{
    if (cpu < MAX_CPUS && rd_cache[cpu])
        return rd_cache[cpu];
    /* Aff0 = cpu, other affinity levels 0 (QEMU virt with <= 8 CPUs) */
    for (u64 rd = GICR_BASE; rd < GICR_REGION_END; rd += GICR_STRIDE) {
        u64 typer = readq(rd + GICR_TYPER);
        if ((typer >> 32) == cpu) {
            if (cpu < MAX_CPUS)
                rd_cache[cpu] = rd;
            return rd;
        }
        if (typer & (1U << 4))   /* Last */
            break;
    }
    printf("FAIL no redistributor for cpu %u\n", cpu);
    exit_status(2);
}

u64 gicr_self(void) { return gicr_base(cpu_id()); }

void gicd_wait_rwp(void)
{
    while (gicd_read(GICD_CTLR) & GICD_CTLR_RWP)
        ;
}

void gicr_wait_rwp(u64 rd)
{
    while (readl(rd + GICR_CTLR) & (1U << 3))
        ;
}

u32 gic_num_irqs(void)
{
    u32 n = ((gicd_read(GICD_TYPER) & 0x1f) + 1) * 32;
    return n > 1020 ? 1020 : n;
}

void gic_dist_init(void)
{
    gicd_write(GICD_CTLR, 0);
    gicd_wait_rwp();
    u32 n = gic_num_irqs();
    for (u32 i = 32; i < n; i += 32) {
        gicd_write(GICD_IGROUPR + i / 8, 0xffffffff);
        gicd_write(GICD_ICENABLER + i / 8, 0xffffffff);
        gicd_write(GICD_ICPENDR + i / 8, 0xffffffff);
        gicd_write(GICD_ICACTIVER + i / 8, 0xffffffff);
    }
    for (u32 i = 32; i < n; i += 4)
        gicd_write(GICD_IPRIORITYR + i, 0xa0a0a0a0);
    for (u32 i = 32; i < n; i += 16)
        gicd_write(GICD_ICFGR + i / 4, 0);   /* level-sensitive */
    gicd_wait_rwp();
    gicd_write(GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_G1);
    gicd_wait_rwp();
    for (u32 i = 32; i < n; i++)
        writeq(GICD_BASE + GICD_IROUTER + 8 * i, 0);
}

void gicr_wake(u64 rd)
{
    u32 w = readl(rd + GICR_WAKER);
    writel(rd + GICR_WAKER, w & ~2U);              /* ProcessorSleep = 0 */
    while (readl(rd + GICR_WAKER) & 4U)            /* ChildrenAsleep */
        ;
}

void gic_cpu_init(void)
{
    u64 rd = gicr_self();
    gicr_wake(rd);
    writel(rd + GICR_IGROUPR0, 0xffffffff);
    writel(rd + GICR_ICENABLER0, 0xffffffff);
    writel(rd + GICR_ICPENDR0, 0xffffffff);
    writel(rd + GICR_ICACTIVER0, 0xffffffff);
    for (u32 i = 0; i < 32; i += 4)
        writel(rd + GICR_IPRIORITYR + i, 0xa0a0a0a0);
    gicr_wait_rwp(rd);

    write_sysreg(S3_0_C12_C12_5, icc_sre() | 1);   /* ICC_SRE_EL1.SRE */
    isb();
    icc_set_pmr(0xff);
    write_sysreg(S3_0_C12_C12_3, 0);               /* BPR1 */
    icc_set_ctlr(icc_ctlr() & ~(u64)ICC_CTLR_EOIMODE);
    write_sysreg(S3_0_C12_C12_7, 1);               /* IGRPEN1 */
    isb();
}

/* register address for per-interrupt bit/byte arrays: SGI/PPI in own redistributor */
static u64 bit_reg(u32 gicd_off, u32 gicr_off, u32 intid)
{
    if (intid < 32)
        return gicr_self() + gicr_off;
    return GICD_BASE + gicd_off + (intid / 32) * 4;
}

void gic_enable_irq(u32 intid) { writel(bit_reg(GICD_ISENABLER, GICR_ISENABLER0, intid), 1U << (intid % 32)); }
void gic_disable_irq(u32 intid)
{
    writel(bit_reg(GICD_ICENABLER, GICR_ICENABLER0, intid), 1U << (intid % 32));
    if (intid < 32)
        gicr_wait_rwp(gicr_self());
    else
        gicd_wait_rwp();
}
void gic_set_pending(u32 intid) { writel(bit_reg(GICD_ISPENDR, GICR_ISPENDR0, intid), 1U << (intid % 32)); }
void gic_clear_pending(u32 intid) { writel(bit_reg(GICD_ICPENDR, GICR_ICPENDR0, intid), 1U << (intid % 32)); }
void gic_clear_active(u32 intid) { writel(bit_reg(GICD_ICACTIVER, GICR_ICACTIVER0, intid), 1U << (intid % 32)); }
int gic_is_pending(u32 intid) { return (readl(bit_reg(GICD_ISPENDR, GICR_ISPENDR0, intid)) >> (intid % 32)) & 1; }
int gic_is_active(u32 intid) { return (readl(bit_reg(GICD_ISACTIVER, GICR_ISACTIVER0, intid)) >> (intid % 32)) & 1; }
int gic_is_enabled(u32 intid) { return (readl(bit_reg(GICD_ISENABLER, GICR_ISENABLER0, intid)) >> (intid % 32)) & 1; }

static u64 prio_reg(u32 intid)
{
    if (intid < 32)
        return gicr_self() + GICR_IPRIORITYR + (intid & ~3U);
    return GICD_BASE + GICD_IPRIORITYR + (intid & ~3U);
}

/* 32-bit read-modify-write: byte accesses are legal on the GIC, but keep to words */
void gic_set_priority(u32 intid, u8 prio)
{
    u64 a = prio_reg(intid);
    unsigned sh = (intid % 4) * 8;
    u32 v = readl(a);
    v = (v & ~(0xffU << sh)) | ((u32)prio << sh);
    writel(a, v);
}

u8 gic_get_priority(u32 intid) { return (u8)(readl(prio_reg(intid)) >> ((intid % 4) * 8)); }

void gic_set_edge(u32 intid, int edge)
{
    u64 a = intid < 32 ? gicr_self() + GICR_ICFGR0 + (intid / 16) * 4 : GICD_BASE + GICD_ICFGR + (intid / 16) * 4;
    unsigned sh = (intid % 16) * 2 + 1;
    u32 v = readl(a);
    v = edge ? (v | (1U << sh)) : (v & ~(1U << sh));
    writel(a, v);
}

void gic_route_spi(u32 intid, u64 aff) { writeq(GICD_BASE + GICD_IROUTER + 8 * intid, aff); }

u32 gicr_sgi_pending0(void) { return readl(gicr_self() + GICR_ISPENDR0); }
u32 gicr_sgi_active0(void) { return readl(gicr_self() + GICR_ISACTIVER0); }

/* ICC_SGI1R_EL1: TargetList[15:0], Aff1[23:16], INTID[27:24], Aff2[39:32], IRM[40], Aff3[55:48] */
void gic_send_sgi(u32 sgi, u16 target_list)
{
    dsb_sy();
    write_sysreg(S3_0_C12_C11_5, ((u64)(sgi & 0xf) << 24) | target_list);
    isb();
}

void gic_send_sgi_self(u32 sgi) { gic_send_sgi(sgi, (u16)(1U << cpu_id())); }
void gic_send_sgi_cpu(u32 sgi, unsigned cpu) { gic_send_sgi(sgi, (u16)(1U << cpu)); }

void gic_send_sgi_broadcast(u32 sgi)
{
    dsb_sy();
    write_sysreg(S3_0_C12_C11_5, ((u64)(sgi & 0xf) << 24) | (1UL << 40));
    isb();
}
