/* Identification and reset values of the GIC, ITS, CPU interface and timer.
 * Lines starting "MASK" hold values where vgic (following KVM) and QEMU may differ. */
#include "guest.h"

static unsigned nr_redists(void)
{
    unsigned n = 0;
    for (u64 rd = GICR_BASE; rd < GICR_REGION_END; rd += GICR_STRIDE) {
        n++;
        if (readq(rd + GICR_TYPER) & (1U << 4))
            break;
    }
    return n;
}

int main(void)
{
    char name[64];

    printf("ids: identification and reset values\n");
    u64 mpidr = read_sysreg(mpidr_el1);
    printf("MPIDR_EL1.Aff0=%lu\n", mpidr & 0xff);
    mask_line("MPIDR_EL1", mpidr);
    u32 pv = psci_version();
    mask_line("PSCI_VERSION", pv);
    check_true("PSCI_VERSION major >= 1", (pv >> 16) >= 1);

    /* ---- distributor ---- */
    u32 ctlr = gicd_read(GICD_CTLR);
    printf("GICD_CTLR reset=0x%x\n", ctlr);
    u32 typer = gicd_read(GICD_TYPER);
    mask_line("GICD_TYPER", typer);
    printf("GICD_TYPER.ITLinesNumber=%u\n", typer & 0x1f);
    printf("GICD_TYPER.LPIS=%u\n", (typer >> 17) & 1);
    printf("GICD_TYPER.IDbits=%u\n", ((typer >> 19) & 0x1f) + 1);
    printf("GICD_TYPER.SecurityExtn=%u\n", (typer >> 10) & 1);
    printf("GICD_TYPER.MBIS=%u\n", (typer >> 16) & 1);
    mask_line("GICD_IIDR", gicd_read(GICD_IIDR));
    check_true("GICD_IIDR.Implementer is ARM (0x43b)", (gicd_read(GICD_IIDR) & 0xfff) == 0x43b);
    mask_line("GICD_TYPER2", gicd_read(GICD_TYPER2));
    u32 pidr2 = gicd_read(GICD_PIDR2);
    mask_line("GICD_PIDR2", pidr2);
    printf("GICD_PIDR2.ArchRev=%u\n", (pidr2 >> 4) & 0xf);
    gicd_write(GICD_TYPER, 0xffffffff);
    CHECK("GICD_TYPER is read-only", gicd_read(GICD_TYPER), typer);
    gic_dist_init();
    printf("GICD_CTLR after enabling ARE+Grp1=0x%x\n", gicd_read(GICD_CTLR));
    printf("GICD_IGROUPR1 after writing ones=0x%x\n", gicd_read(GICD_IGROUPR + 4));
    printf("GICD_IGROUPR0 (SGI/PPI, RAZ with ARE)=0x%x\n", gicd_read(GICD_IGROUPR));
    gicd_write(GICD_IPRIORITYR + 32, 0xffffffff);
    mask_line("GICD_IPRIORITYR8.after_ones", gicd_read(GICD_IPRIORITYR + 32));
    check_true("GICD_IPRIORITYR8 keeps at least 4 high bits", (gicd_read(GICD_IPRIORITYR + 32) & 0xf0f0f0f0) == 0xf0f0f0f0);
    gicd_write(GICD_IPRIORITYR + 32, 0xa0a0a0a0);
    writeq(GICD_BASE + GICD_IROUTER + 8 * 32, 0xffffffffffffffffUL);
    mask_line("GICD_IROUTER32.after_ones", readq(GICD_BASE + GICD_IROUTER + 8 * 32));
    writeq(GICD_BASE + GICD_IROUTER + 8 * 32, 0);

    /* ---- redistributors ---- */
    unsigned n = nr_redists();
    printf("redistributors=%u\n", n);
    for (unsigned i = 0; i < n; i++) {
        u64 rd = GICR_BASE + i * GICR_STRIDE;
        u64 t = readq(rd + GICR_TYPER);
        snprintf(name, sizeof name, "GICR%u_TYPER", i);
        mask_line(name, t);
        printf("GICR%u_TYPER.PLPIS=%lu Last=%lu ProcessorNumber=%lu Affinity=0x%lx\n", i,
               t & 1, (t >> 4) & 1, (t >> 8) & 0xffff, t >> 32);
        snprintf(name, sizeof name, "GICR%u_IIDR", i);
        mask_line(name, readl(rd + GICR_IIDR));
        u32 p2 = readl(rd + GICR_PIDR2);
        snprintf(name, sizeof name, "GICR%u_PIDR2", i);
        mask_line(name, p2);
        printf("GICR%u_PIDR2.ArchRev=%u\n", i, (p2 >> 4) & 0xf);
        u32 c = readl(rd + GICR_CTLR);
        snprintf(name, sizeof name, "GICR%u_CTLR.reset", i);
        mask_line(name, c);
        printf("GICR%u_CTLR.EnableLPIs=%u\n", i, c & 1);
        snprintf(name, sizeof name, "GICR%u_WAKER.reset", i);
        mask_line(name, readl(rd + GICR_WAKER));
        gicr_wake(rd);
        printf("GICR%u_WAKER after wake=0x%x\n", i, readl(rd + GICR_WAKER));
        snprintf(name, sizeof name, "GICR%u_ISENABLER0.reset", i);
        mask_line(name, readl(rd + GICR_ISENABLER0));
        printf("GICR%u_ICFGR0=0x%x\n", i, readl(rd + GICR_ICFGR0));
        snprintf(name, sizeof name, "GICR%u_PROPBASER.reset", i);
        mask_line(name, readq(rd + GICR_PROPBASER));
        snprintf(name, sizeof name, "GICR%u_PENDBASER.reset", i);
        mask_line(name, readq(rd + GICR_PENDBASER));
    }
    gic_cpu_init();
    u64 rd0 = gicr_self();
    writel(rd0 + GICR_IPRIORITYR, 0xffffffff);
    mask_line("GICR0_IPRIORITYR0.after_ones", readl(rd0 + GICR_IPRIORITYR));
    writel(rd0 + GICR_IPRIORITYR, 0xa0a0a0a0);
    writel(rd0 + GICR_ICFGR0, 0);
    printf("GICR_ICFGR0 (SGIs always edge) after writing 0=0x%x\n", readl(rd0 + GICR_ICFGR0));

    /* ---- ITS ---- */
    u32 gctlr = readl(GITS_BASE + GITS_CTLR);
    printf("GITS_CTLR reset=0x%x\n", gctlr);
    u64 gtyper = readq(GITS_BASE + GITS_TYPER);
    mask_line("GITS_TYPER", gtyper);
    printf("GITS_TYPER.Physical=%lu Virtual=%lu PTA=%lu\n", gtyper & 1, (gtyper >> 1) & 1, (gtyper >> 19) & 1);
    mask_line("GITS_TYPER.ITT_entry_size", ((gtyper >> 4) & 0xf) + 1);
    mask_line("GITS_TYPER.IDbits", ((gtyper >> 8) & 0x1f) + 1);
    mask_line("GITS_TYPER.Devbits", ((gtyper >> 13) & 0x1f) + 1);
    mask_line("GITS_TYPER.CIL", (gtyper >> 36) & 1);
    mask_line("GITS_TYPER.CIDbits", ((gtyper >> 32) & 0xf) + 1);
    mask_line("GITS_TYPER.HCC", (gtyper >> 24) & 0xff);
    check_true("GITS_TYPER.IDbits >= 14", ((gtyper >> 8) & 0x1f) + 1 >= 14);
    check_true("GITS_TYPER.Devbits >= 1", ((gtyper >> 13) & 0x1f) + 1 >= 1);
    mask_line("GITS_IIDR", readl(GITS_BASE + GITS_IIDR));
    u32 gp2 = readl(GITS_BASE + GITS_PIDR2);
    mask_line("GITS_PIDR2", gp2);
    printf("GITS_PIDR2.ArchRev=%u\n", (gp2 >> 4) & 0xf);
    mask_line("GITS_CBASER.reset", readq(GITS_BASE + GITS_CBASER));
    printf("GITS_CWRITER reset=0x%lx GITS_CREADR reset=0x%lx\n", its_cwriter(), its_creadr());
    for (unsigned i = 0; i < 8; i++) {
        u64 b = readq(GITS_BASE + GITS_BASER + 8 * i);
        snprintf(name, sizeof name, "GITS_BASER%u.reset", i);
        mask_line(name, b);
        unsigned type = (b >> 56) & 7;
        if (type)
            printf("GITS_BASER%u.Type=%u Entry_Size=%lu Page_Size=%lu Valid=%lu\n", i, type,
                   ((b >> 48) & 0x1f) + 1, (b >> 8) & 3, b >> 63);
        else
            printf("GITS_BASER%u.Type=0\n", i);
    }
    its_init();
    printf("GITS_CTLR after enable=0x%x\n", readl(GITS_BASE + GITS_CTLR) & 1);
    writeq(GITS_BASE + GITS_TYPER, 0);
    CHECK("GITS_TYPER is read-only", readq(GITS_BASE + GITS_TYPER), gtyper);

    /* ---- CPU interface ---- */
    printf("ICC_SRE_EL1=0x%lx\n", icc_sre());
    u64 ictlr = icc_ctlr();
    mask_line("ICC_CTLR_EL1", ictlr);
    mask_line("ICC_CTLR_EL1.PRIbits", ((ictlr >> 8) & 7) + 1);
    mask_line("ICC_CTLR_EL1.IDbits", (ictlr >> 11) & 7);
    mask_line("ICC_CTLR_EL1.A3V", (ictlr >> 15) & 1);
    printf("ICC_CTLR_EL1.EOImode=%lu CBPR=%lu\n", (ictlr >> 1) & 1, ictlr & 1);
    check_true("ICC_CTLR_EL1.PRIbits >= 4 bits", ((ictlr >> 8) & 7) + 1 >= 4);
    icc_set_pmr(0xff);
    u64 pmr = icc_pmr();
    mask_line("ICC_PMR_EL1.after_0xff", pmr);
    check_true("ICC_PMR_EL1 keeps at least 4 high bits", (pmr & 0xf0) == 0xf0);
    write_sysreg(S3_0_C12_C12_3, 0);
    isb();
    mask_line("ICC_BPR1_EL1.after_0", icc_bpr1());
    printf("ICC_IGRPEN1_EL1=0x%lx\n", icc_igrpen1());
    printf("ICC_RPR_EL1 idle=0x%lx\n", icc_rpr());
    printf("ICC_IAR1_EL1 idle=%u\n", icc_iar1());

    /* ---- timer ---- */
    u64 f = cntfrq();
    mask_line("CNTFRQ_EL0", f);
    check_true("CNTFRQ_EL0 nonzero", f != 0);
    printf("CNTV_CTL_EL0.ENABLE=%u\n", vtimer_get_ctl() & 1);

    /* ---- the board's empty virtio-mmio transports (0x0a000000, 32 x 0x200) ---- */
    for (u64 t = VIRTIO_MMIO_BASE; t < VIRTIO_MMIO_BASE + 32 * 0x200; t += 31 * 0x200)
        printf("virtio-mmio@%lx magic=0x%x version=%u device=%u vendor=0x%x features=0x%x\n", t,
               readl(t), readl(t + 4), readl(t + 8), readl(t + 0xc), readl(t + 0x10));
    writel(VIRTIO_MMIO_BASE + 0x70, 0xf);     /* Status: no backend, ignored */
    printf("virtio-mmio status after write=0x%x byte0=0x%x byte1=0x%x quad=0x%lx\n",
           readl(VIRTIO_MMIO_BASE + 0x70), readb(VIRTIO_MMIO_BASE), readb(VIRTIO_MMIO_BASE + 1),
           readq(VIRTIO_MMIO_BASE));
    finish();
}
