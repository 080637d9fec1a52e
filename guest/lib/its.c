/* GICv3 ITS driver: tables, command queue, commands; LPI tables per redistributor. */
#include "guest.h"

#define SZ_64K 0x10000UL
#define CMDQ_SIZE 0x10000UL          /* 16 x 4K pages */
#define ITT_POOL_SIZE 0x80000UL
#define NR_LPI_IDS (1UL << LPI_ID_BITS)

/* LPI configuration (shared by all redistributors) and pending tables (one per CPU) */
u8 lpi_prop_table[NR_LPI_IDS - LPI_BASE] __attribute__((aligned(SZ_64K)));
static u8 lpi_pend_tables[MAX_CPUS][SZ_64K] __attribute__((aligned(SZ_64K)));
/* ITS tables: one 64K page for each BASER that needs one (device, collection, ...) */
static u8 its_tables[8][SZ_64K] __attribute__((aligned(SZ_64K)));
static u8 its_cmdq[CMDQ_SIZE] __attribute__((aligned(SZ_64K)));
static u8 itt_pool[ITT_POOL_SIZE] __attribute__((aligned(SZ_64K)));
static u64 itt_next;
static u64 cmd_write;      /* offset of next command */

struct its_info g_its;

u64 its_read64(u32 off) { return readq(GITS_BASE + off); }
u64 its_creadr(void) { return readq(GITS_BASE + GITS_CREADR); }
u64 its_cwriter(void) { return readq(GITS_BASE + GITS_CWRITER); }

void its_init(void)
{
    u64 typer = readq(GITS_BASE + GITS_TYPER);
    g_its.typer = typer;
    g_its.itt_entry_size = ((typer >> 4) & 0xf) + 1;
    g_its.idbits = ((typer >> 8) & 0x1f) + 1;
    g_its.devbits = ((typer >> 13) & 0x1f) + 1;
    g_its.pta = (typer >> 19) & 1;
    g_its.cidbits = (typer & (1UL << 36)) ? ((typer >> 32) & 0xf) + 1 : 16;

    /* disable the ITS before programming its tables */
    writel(GITS_BASE + GITS_CTLR, 0);
    while (!(readl(GITS_BASE + GITS_CTLR) & GITS_CTLR_QUIESCENT))
        ;

    for (unsigned n = 0; n < 8; n++) {
        u64 a = GITS_BASE + GITS_BASER + 8 * n;
        u64 b = readq(a);
        unsigned type = (b >> 56) & 7;
        if (type == 0)
            continue;
        unsigned esize = ((b >> 48) & 0x1f) + 1;
        (void)esize;          /* one 64K page holds 64K/esize entries: enough here */
        u64 pa = (u64)its_tables[n];
        u64 v = (1UL << 63)                  /* Valid */
              | (b & (7UL << 56))            /* Type (RO) */
              | (b & (0x1fUL << 48))         /* Entry_Size (RO) */
              | (1UL << 59)                  /* InnerCache = nC (ignored) */
              | (pa & 0x0000fffffffff000UL)  /* PA[47:16] for 64K pages; PA is 64K-aligned */
              | (2UL << 8)                   /* Page_Size 64K */
              | 0;                           /* Size = 1 page */
        writeq(a, v);
        u64 r = readq(a);
        if (((r >> 8) & 3) != 2) {
            printf("FAIL GITS_BASER%u page size not accepted: 0x%lx\n", n, r);
            exit_status(2);
        }
    }

    u64 cb = (1UL << 63) | (1UL << 59) | ((u64)its_cmdq & 0x000ffffffffff000UL) | (CMDQ_SIZE / 4096 - 1);
    writeq(GITS_BASE + GITS_CBASER, cb);
    writeq(GITS_BASE + GITS_CWRITER, 0);
    cmd_write = 0;
    dsb_sy();
    writel(GITS_BASE + GITS_CTLR, GITS_CTLR_ENABLED);
}

u64 its_rdbase(unsigned cpu)
{
    if (g_its.pta)
        return gicr_base(cpu) >> 16;          /* PA[51:16] in RDbase[50:16] */
    return (readq(gicr_base(cpu) + GICR_TYPER) >> 8) & 0xffff;   /* processor number */
}

void gic_lpi_cpu_init(void)
{
    unsigned cpu = cpu_id();
    u64 rd = gicr_self();
    /* property table: every LPI disabled, default priority */
    static int prop_init_done;
    if (!READ_ONCE(prop_init_done) && cpu == 0) {
        for (u64 i = 0; i < sizeof(lpi_prop_table); i++)
            lpi_prop_table[i] = LPI_PROP_DEFAULT;
        dsb_sy();
        WRITE_ONCE(prop_init_done, 1);
    }
    writel(rd + GICR_CTLR, readl(rd + GICR_CTLR) & ~1U);
    writeq(rd + GICR_PROPBASER, ((u64)lpi_prop_table & 0x000ffffffffff000UL) | (LPI_ID_BITS - 1));
    writeq(rd + GICR_PENDBASER, ((u64)lpi_pend_tables[cpu] & 0x000fffffffff0000UL));   /* table is zero: no PTZ needed */
    dsb_sy();
    writel(rd + GICR_CTLR, readl(rd + GICR_CTLR) | 1U);   /* EnableLPIs */
    isb();
}

void lpi_set_config(u32 intid, u8 prop)
{
    lpi_prop_table[intid - LPI_BASE] = prop;
    dsb_sy();
}

u8 lpi_get_config(u32 intid) { return lpi_prop_table[intid - LPI_BASE]; }

int lpi_pending_in_table(unsigned cpu, u32 intid)
{
    return (READ_ONCE(lpi_pend_tables[cpu][intid / 8]) >> (intid % 8)) & 1;
}

static void its_send(u64 d0, u64 d1, u64 d2, u64 d3)
{
    volatile u64 *c = (volatile u64 *)(its_cmdq + cmd_write);
    c[0] = d0;
    c[1] = d1;
    c[2] = d2;
    c[3] = d3;
    cmd_write = (cmd_write + 32) % CMDQ_SIZE;
    dsb_sy();
    writeq(GITS_BASE + GITS_CWRITER, cmd_write);
    for (u64 spins = 0;; spins++) {
        u64 r = readq(GITS_BASE + GITS_CREADR);
        if ((r & 0xfffe0) == cmd_write)
            break;
        if (r & 1) {
            printf("FAIL ITS command queue stalled: CREADR=0x%lx\n", r);
            exit_status(2);
        }
        if (spins > 100000000UL) {
            printf("FAIL ITS command timeout: CREADR=0x%lx CWRITER=0x%lx\n", r, cmd_write);
            exit_status(2);
        }
    }
}

#define CMD_MOVI    0x01
#define CMD_INT     0x03
#define CMD_CLEAR   0x04
#define CMD_SYNC    0x05
#define CMD_MAPD    0x08
#define CMD_MAPC    0x09
#define CMD_MAPTI   0x0A
#define CMD_MAPI    0x0B
#define CMD_INV     0x0C
#define CMD_INVALL  0x0D
#define CMD_DISCARD 0x0F

static u64 dev_ev(u64 cmd, u32 devid) { return cmd | ((u64)devid << 32); }

void its_mapd(u32 devid, unsigned event_bits, int valid)
{
    u64 itt = 0;
    if (valid) {
        u64 size = ((u64)g_its.itt_entry_size << event_bits);
        size = (size + 255) & ~255UL;
        if (itt_next + size > ITT_POOL_SIZE) {
            printf("FAIL ITT pool exhausted\n");
            exit_status(2);
        }
        itt = (u64)itt_pool + itt_next;
        itt_next += size;
    }
    its_send(dev_ev(CMD_MAPD, devid), event_bits ? event_bits - 1 : 0,
             (valid ? (1UL << 63) : 0) | (itt & 0x000fffffffffff00UL), 0);
}

void its_mapc(u16 icid, unsigned cpu, int valid)
{
    its_send(CMD_MAPC, 0, (valid ? (1UL << 63) : 0) | (its_rdbase(cpu) << 16) | icid, 0);
}

void its_mapti(u32 devid, u32 eventid, u32 intid, u16 icid)
{
    its_send(dev_ev(CMD_MAPTI, devid), eventid | ((u64)intid << 32), icid, 0);
}

void its_mapi(u32 devid, u32 eventid, u16 icid) { its_send(dev_ev(CMD_MAPI, devid), eventid, icid, 0); }
void its_int(u32 devid, u32 eventid) { its_send(dev_ev(CMD_INT, devid), eventid, 0, 0); }
void its_inv(u32 devid, u32 eventid) { its_send(dev_ev(CMD_INV, devid), eventid, 0, 0); }
void its_invall(u16 icid) { its_send(CMD_INVALL, 0, icid, 0); }
void its_sync(unsigned cpu) { its_send(CMD_SYNC, 0, its_rdbase(cpu) << 16, 0); }
void its_movi(u32 devid, u32 eventid, u16 icid) { its_send(dev_ev(CMD_MOVI, devid), eventid, icid, 0); }
void its_discard(u32 devid, u32 eventid) { its_send(dev_ev(CMD_DISCARD, devid), eventid, 0, 0); }
void its_clear(u32 devid, u32 eventid) { its_send(dev_ev(CMD_CLEAR, devid), eventid, 0, 0); }
