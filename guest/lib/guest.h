/* vgic guest library: bare-metal AArch64 on QEMU virt (GICv3 + ITS). */
#ifndef GUEST_H
#define GUEST_H

#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define MAX_CPUS 8

/* ---- memory map (QEMU virt) ---- */
#define GICD_BASE       0x08000000UL
#define GITS_BASE       0x08080000UL
#define GITS_TRANSLATER_ADDR (GITS_BASE + 0x10040UL)
#define GICR_BASE       0x080A0000UL
#define GICR_STRIDE     0x20000UL
#define GICR_REGION_END (GICR_BASE + 0xF60000UL)
#define UART_BASE       0x09000000UL
#define VIRTIO_MMIO_BASE 0x0a000000UL

/* ---- MMIO / sysreg helpers ---- */
static inline u32 readl(u64 a) { u32 v; asm volatile("ldr %w0, [%1]" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline void writel(u64 a, u32 v) { asm volatile("str %w0, [%1]" : : "rZ"(v), "r"(a) : "memory"); }
static inline u64 readq(u64 a) { u64 v; asm volatile("ldr %0, [%1]" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline void writeq(u64 a, u64 v) { asm volatile("str %x0, [%1]" : : "rZ"(v), "r"(a) : "memory"); }
static inline u8 readb(u64 a) { u8 v; asm volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline void writeb(u64 a, u8 v) { asm volatile("strb %w0, [%1]" : : "rZ"(v), "r"(a) : "memory"); }

#define read_sysreg(r) ({ u64 __v; asm volatile("mrs %0, " #r : "=r"(__v) :: "memory"); __v; })
#define write_sysreg(r, v) do { u64 __v = (u64)(v); asm volatile("msr " #r ", %x0" : : "rZ"(__v) : "memory"); } while (0)

static inline void isb(void) { asm volatile("isb" ::: "memory"); }
static inline void dsb_sy(void) { asm volatile("dsb sy" ::: "memory"); }
static inline void dsb_ish(void) { asm volatile("dsb ish" ::: "memory"); }
static inline void dmb_ish(void) { asm volatile("dmb ish" ::: "memory"); }
static inline void wfi(void) { asm volatile("wfi" ::: "memory"); }
static inline void wfe(void) { asm volatile("wfe" ::: "memory"); }
static inline void sev(void) { asm volatile("sev" ::: "memory"); }
static inline void irq_enable(void) { asm volatile("msr daifclr, #2" ::: "memory"); }
static inline void irq_disable(void) { asm volatile("msr daifset, #2" ::: "memory"); }
static inline void barrier(void) { asm volatile("" ::: "memory"); }
#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

/* ---- exceptions ---- */
struct exc_frame {
    u64 x[31];
    u64 elr;
    u64 spsr;
    u64 pad;
};
/* Vector kinds passed to handlers: 0..3 cur EL SP0 (sync/irq/fiq/serror),
 * 4..7 cur EL SPx, 8..11 lower EL AArch64, 12..15 lower EL AArch32. */
#define EXC_SYNC(k) (((k) & 3) == 0)
typedef void (*exc_handler_t)(struct exc_frame *f, int kind);
/* The handlers get the current-EL kinds (0..7) and the lower-EL AArch64 ones (8..11). */
void set_sync_handler(exc_handler_t h);   /* NULL restores the default */
void set_irq_handler(exc_handler_t h);
void set_fiq_handler(exc_handler_t h);
u64 run_el1t(u64 (*fn)(u64), u64 arg, void *sp0_top);
extern char vectors[];

/* ---- cpu ---- */
static inline unsigned cpu_id(void) { return (unsigned)(read_sysreg(mpidr_el1) & 0xff); }
static inline u64 cpu_mpidr_aff(void) {
    u64 m = read_sysreg(mpidr_el1);
    return (m & 0xffffffUL) | ((m >> 8) & 0xff000000UL);   /* aff3.aff2.aff1.aff0 as 32 bits */
}
int main(void);

/* ---- console ---- */
void uart_putc(char c);
void puts(const char *s);          /* no newline added */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);

/* ---- exit ---- */
void exit_status(int n) __attribute__((noreturn));
extern int g_failures;
/* check helpers: print "ok what" or "FAIL what: got X expected Y" */
void check_u64(const char *what, u64 got, u64 expected);
#define CHECK(what, got, exp) check_u64((what), (u64)(got), (u64)(exp))
void check_true(const char *what, int cond);
void finish(void) __attribute__((noreturn));   /* exit 1 if any FAIL, else 0 */
void mask_line(const char *name, u64 value);  /* "MASK name=0x..." */
void bench_line(const char *name, u64 ns_per_op, u64 ops);

/* ---- PSCI (HVC) ---- */
#define PSCI_VERSION        0x84000000U
#define PSCI_CPU_OFF        0x84000002U
#define PSCI_CPU_ON         0xC4000003U
#define PSCI_AFFINITY_INFO  0xC4000004U
#define PSCI_SYSTEM_OFF     0x84000008U
#define PSCI_SYSTEM_RESET   0x84000009U
u64 psci_call(u64 fn, u64 a1, u64 a2, u64 a3);
u32 psci_version(void);
/* Start cpu (Aff0 = cpu) running fn(cpu) on its own stack. Returns PSCI status. */
typedef void (*secondary_fn_t)(unsigned cpu);
long psci_cpu_on(unsigned cpu, secondary_fn_t fn);
void psci_cpu_off(void) __attribute__((noreturn));
long psci_affinity_info(unsigned cpu);
void psci_system_off(void) __attribute__((noreturn));
void psci_system_reset(void) __attribute__((noreturn));

/* ---- timer ---- */
static inline u64 cntvct(void) { isb(); return read_sysreg(cntvct_el0); }
static inline u64 cntfrq(void) { return read_sysreg(cntfrq_el0); }
u64 ticks_to_ns(u64 ticks);
u64 ns_to_ticks(u64 ns);
void delay_us(u64 us);
#define CNTV_ENABLE  1U
#define CNTV_IMASK   2U
#define CNTV_ISTATUS 4U
#define VTIMER_PPI 27
void vtimer_set_tval(u32 ticks);
void vtimer_set_cval(u64 cval);
void vtimer_ctl(u32 ctl);
u32 vtimer_get_ctl(void);

/* ---- GIC ---- */
/* GICD registers */
#define GICD_CTLR       0x0000
#define GICD_TYPER      0x0004
#define GICD_IIDR       0x0008
#define GICD_TYPER2     0x000C
#define GICD_IGROUPR    0x0080
#define GICD_ISENABLER  0x0100
#define GICD_ICENABLER  0x0180
#define GICD_ISPENDR    0x0200
#define GICD_ICPENDR    0x0280
#define GICD_ISACTIVER  0x0300
#define GICD_ICACTIVER  0x0380
#define GICD_IPRIORITYR 0x0400
#define GICD_ICFGR      0x0C00
#define GICD_IROUTER    0x6000
#define GICD_PIDR2      0xFFE8
#define GICD_CTLR_RWP   (1U << 31)
#define GICD_CTLR_ARE   (1U << 4)
#define GICD_CTLR_G1    (1U << 1)
#define GICD_CTLR_DS    (1U << 6)
/* GICR RD frame */
#define GICR_CTLR       0x0000
#define GICR_IIDR       0x0004
#define GICR_TYPER      0x0008
#define GICR_WAKER      0x0014
#define GICR_PROPBASER  0x0070
#define GICR_PENDBASER  0x0078
#define GICR_PIDR2      0xFFE8
/* GICR SGI frame (+0x10000) */
#define GICR_SGI_OFF    0x10000
#define GICR_IGROUPR0   (GICR_SGI_OFF + 0x0080)
#define GICR_ISENABLER0 (GICR_SGI_OFF + 0x0100)
#define GICR_ICENABLER0 (GICR_SGI_OFF + 0x0180)
#define GICR_ISPENDR0   (GICR_SGI_OFF + 0x0200)
#define GICR_ICPENDR0   (GICR_SGI_OFF + 0x0280)
#define GICR_ISACTIVER0 (GICR_SGI_OFF + 0x0300)
#define GICR_ICACTIVER0 (GICR_SGI_OFF + 0x0380)
#define GICR_IPRIORITYR (GICR_SGI_OFF + 0x0400)
#define GICR_ICFGR0     (GICR_SGI_OFF + 0x0C00)
#define GICR_ICFGR1     (GICR_SGI_OFF + 0x0C04)

#define INTID_SPURIOUS 1023

static inline u32 gicd_read(u32 off) { return readl(GICD_BASE + off); }
static inline void gicd_write(u32 off, u32 v) { writel(GICD_BASE + off, v); }
/* Redistributor RD_base of a cpu (found by scanning GICR_TYPER.Affinity). */
u64 gicr_base(unsigned cpu);
u64 gicr_self(void);
void gicd_wait_rwp(void);
void gicr_wait_rwp(u64 rd);
/* Distributor: disable, all SPIs group 1 prio 0xa0 disabled edge routed to CPU 0, enable ARE+G1. */
void gic_dist_init(void);
/* This CPU: wake redistributor, SGIs/PPIs group 1 prio 0xa0 disabled, ICC SRE/PMR/BPR/IGRPEN1. */
void gic_cpu_init(void);
void gicr_wake(u64 rd);
u32 gic_num_irqs(void);
void gic_enable_irq(u32 intid);
void gic_disable_irq(u32 intid);
void gic_set_priority(u32 intid, u8 prio);
u8 gic_get_priority(u32 intid);
void gic_set_pending(u32 intid);
void gic_clear_pending(u32 intid);
void gic_clear_active(u32 intid);
int gic_is_pending(u32 intid);
int gic_is_active(u32 intid);
int gic_is_enabled(u32 intid);
void gic_set_edge(u32 intid, int edge);   /* SPIs and PPIs */
void gic_route_spi(u32 intid, u64 aff);    /* aff = aff3<<32|aff2<<16|aff1<<8|aff0 (IROUTER layout) */
u32 gicr_sgi_pending0(void);
u32 gicr_sgi_active0(void);

/* ICC */
static inline u32 icc_iar1(void) { u32 v = (u32)read_sysreg(S3_0_C12_C12_0); asm volatile("dsb sy" ::: "memory"); return v; }
static inline void icc_eoir1(u32 i) { write_sysreg(S3_0_C12_C12_1, i); isb(); }
static inline void icc_dir(u32 i) { write_sysreg(S3_0_C12_C11_1, i); isb(); }
static inline u64 icc_pmr(void) { return read_sysreg(S3_0_C4_C6_0); }
static inline void icc_set_pmr(u64 v) { write_sysreg(S3_0_C4_C6_0, v); isb(); }
static inline u64 icc_rpr(void) { return read_sysreg(S3_0_C12_C11_3); }
static inline u64 icc_hppir1(void) { return read_sysreg(S3_0_C12_C12_2); }
static inline u64 icc_ctlr(void) { return read_sysreg(S3_0_C12_C12_4); }
static inline void icc_set_ctlr(u64 v) { write_sysreg(S3_0_C12_C12_4, v); isb(); }
static inline u64 icc_sre(void) { return read_sysreg(S3_0_C12_C12_5); }
static inline u64 icc_bpr1(void) { return read_sysreg(S3_0_C12_C12_3); }
static inline u64 icc_igrpen1(void) { return read_sysreg(S3_0_C12_C12_7); }
static inline u64 icc_ap1r0(void) { return read_sysreg(S3_0_C12_C9_0); }
#define ICC_CTLR_EOIMODE 2U
/* SGI1R: send sgi to the CPUs in target_list (bit n = Aff0 n) of cluster aff3.aff2.aff1 = 0 */
void gic_send_sgi(u32 sgi, u16 target_list);
void gic_send_sgi_self(u32 sgi);
void gic_send_sgi_cpu(u32 sgi, unsigned cpu);
void gic_send_sgi_broadcast(u32 sgi);  /* IRM=1: all but self */

/* ---- GICv2 (gic-version=2: memory-mapped CPU interface, lib/gic-v2.c) ---- */
#define GICC_BASE       0x08010000UL
#define GICD_ITARGETSR  0x0800
#define GICD_SGIR       0x0F00
#define GICD_CPENDSGIR  0x0F10
#define GICD_SPENDSGIR  0x0F20
#define GICC_CTLR       0x0000
#define GICC_PMR        0x0004
#define GICC_BPR        0x0008
#define GICC_IAR        0x000C
#define GICC_EOIR       0x0010
#define GICC_RPR        0x0014
#define GICC_HPPIR      0x0018
#define GICC_ABPR       0x001C
#define GICC_APR0       0x00D0
#define GICC_IIDR       0x00FC
#define GICC_DIR        0x1000
#define GICC_CTLR_ENABLE_GRP0 1U
#define GICC_CTLR_EOIMODE     (1U << 9)
#define SGIR_LIST   0U
#define SGIR_OTHERS 1U
#define SGIR_SELF   2U
static inline u32 gicc_read(u32 off) { return readl(GICC_BASE + off); }
static inline void gicc_write(u32 off, u32 v) { writel(GICC_BASE + off, v); }
static inline u32 gicc_iar(void) { u32 v = gicc_read(GICC_IAR); dsb_sy(); return v; }
static inline void gicc_eoir(u32 iar) { gicc_write(GICC_EOIR, iar); }
static inline void gicc_dir(u32 iar) { gicc_write(GICC_DIR, iar); }
u32 gicv2_num_irqs(void);
void gicv2_dist_init(void);
void gicv2_cpu_init(void);
void gicv2_enable_irq(u32 intid);
void gicv2_disable_irq(u32 intid);
void gicv2_set_pending(u32 intid);
void gicv2_clear_pending(u32 intid);
void gicv2_clear_active(u32 intid);
int gicv2_is_pending(u32 intid);
int gicv2_is_active(u32 intid);
void gicv2_set_priority(u32 intid, u8 prio);
void gicv2_set_targets(u32 intid, u8 mask);
void gicv2_set_edge(u32 intid, int edge);
void gicv2_send_sgi(u32 sgi, u8 targets, u32 filter);

/* ---- ITS ---- */
#define GITS_CTLR       0x0000
#define GITS_IIDR       0x0004
#define GITS_TYPER      0x0008
#define GITS_CBASER     0x0080
#define GITS_CWRITER    0x0088
#define GITS_CREADR     0x0090
#define GITS_BASER      0x0100
#define GITS_PIDR2      0xFFE8
#define GITS_CTLR_ENABLED   1U
#define GITS_CTLR_QUIESCENT (1U << 31)
#define LPI_BASE 8192
#define LPI_ID_BITS 14              /* INTIDs below 16384 */
#define LPI_PROP_DEFAULT 0xa2       /* priority 0xa0, bit1 RES1 */
#define LPI_PROP_ENABLED 1
extern u8 lpi_prop_table[];
struct its_info {
    u64 typer;
    unsigned itt_entry_size, devbits, idbits, cidbits;
    int pta;
};
extern struct its_info g_its;
u64 its_read64(u32 off);
/* Allocate/program BASERs and CBASER, enable ITS. Requires gic_dist_init. */
void its_init(void);
/* Per CPU: PROPBASER/PENDBASER, EnableLPIs. Call on each CPU (after gic_cpu_init). */
void gic_lpi_cpu_init(void);
u64 its_rdbase(unsigned cpu);
void lpi_set_config(u32 intid, u8 prop);     /* writes the property byte, no INV */
u8 lpi_get_config(u32 intid);
int lpi_pending_in_table(unsigned cpu, u32 intid);
/* ITS commands (each waits until CREADR passes it) */
void its_mapd(u32 devid, unsigned event_bits, int valid);   /* allocates the ITT */
void its_mapc(u16 icid, unsigned cpu, int valid);
void its_mapti(u32 devid, u32 eventid, u32 intid, u16 icid);
void its_mapi(u32 devid, u32 eventid, u16 icid);
void its_int(u32 devid, u32 eventid);
void its_inv(u32 devid, u32 eventid);
void its_invall(u16 icid);
void its_sync(unsigned cpu);
void its_movi(u32 devid, u32 eventid, u16 icid);
void its_discard(u32 devid, u32 eventid);
void its_clear(u32 devid, u32 eventid);
static inline void its_translater_write(u32 eventid) { writel(GITS_TRANSLATER_ADDR, eventid); }
u64 its_creadr(void);
u64 its_cwriter(void);

/* ---- MMU ---- */
void mmu_enable_identity(void);   /* RAM Normal WB, 0..1G Device-nGnRE */
/* Stage-1 descriptor bits (4K granule). MAIR index 0 is Device-nGnRE, 1 Normal WB. */
#define MT_DEVICE 0
#define MT_NORMAL 1
#define PTE_VALID    (1UL << 0)
#define PTE_PAGE     (3UL << 0)      /* level-3 page (a table at levels 1 and 2) */
#define PTE_ATTR(i)  ((u64)(i) << 2)
#define PTE_AP_EL0   (1UL << 6)      /* AP[1]: EL0 access */
#define PTE_AP_RO    (1UL << 7)      /* AP[2]: read-only */
#define PTE_SH_INNER (3UL << 8)
#define PTE_AF       (1UL << 10)
#define PTE_PXN      (1UL << 53)
#define PTE_UXN      (1UL << 54)
#define PTE_NORMAL_PAGE(pa) ((u64)(pa) | PTE_PAGE | PTE_AF | PTE_SH_INNER | PTE_ATTR(MT_NORMAL))
#define TTBR1_VA_BASE 0xffffff8000000000UL   /* T1SZ = 25 */
#define MMU_POOL_TABLES 16
/* The descriptor of va at level (1..3) in the TTBR0 (ttbr1 = 0) or TTBR1 tables: tables are
 * created, and blocks split into tables of the same mapping, on the way down. The identity map is
 * built on first use; split RAM blocks before mmu_enable_identity(). Changes made with the MMU on
 * need the caller's TLB maintenance. */
u64 *mmu_entry(int ttbr1, u64 va, int level);
void mmu_enable_ttbr1(void);      /* TTBR1 walks on (T1SZ 25, 4K), its table empty until mmu_entry */

#endif
