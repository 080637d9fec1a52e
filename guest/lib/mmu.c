/* Tiny identity-mapping MMU set-up: 4K granule, 39-bit VA, 1 GiB level-1 blocks.
 * 0..1G: Device-nGnRE (GIC, UART, ...); 1G..2G (RAM at 0x40000000): Normal write-back.
 * mmu_entry() adds finer mappings (tables from a small pool, blocks split on the way), for
 * TTBR0 and, after mmu_enable_ttbr1(), for TTBR1 (the top 512 GiB of the address space). */
#include "guest.h"

static u64 l1_table[512] __attribute__((aligned(4096)));
static u64 l1_table_hi[512] __attribute__((aligned(4096)));
static u64 pt_pool[MMU_POOL_TABLES][512] __attribute__((aligned(4096)));
static unsigned pt_used;
static int built;

#define MAIR_DEVICE_nGnRE 0x04UL
#define MAIR_NORMAL_WB    0xffUL
#define DESC_BLOCK  1UL

static void build_identity(void)
{
    if (built)
        return;
    for (unsigned i = 0; i < 512; i++)
        l1_table[i] = 0;
    l1_table[0] = 0x00000000UL | DESC_BLOCK | PTE_AF | PTE_ATTR(MT_DEVICE) | PTE_PXN | PTE_UXN;
    l1_table[1] = 0x40000000UL | DESC_BLOCK | PTE_AF | PTE_SH_INNER | PTE_ATTR(MT_NORMAL);
    built = 1;
    dsb_sy();
}

static u64 *pt_alloc(void)
{
    if (pt_used >= MMU_POOL_TABLES) {
        printf("mmu: page-table pool exhausted\n");
        exit_status(2);
    }
    u64 *t = pt_pool[pt_used++];
    for (unsigned i = 0; i < 512; i++)
        t[i] = 0;
    return t;
}

u64 *mmu_entry(int ttbr1, u64 va, int level)
{
    build_identity();
    u64 *t = ttbr1 ? l1_table_hi : l1_table;
    for (int lvl = 1;; lvl++) {
        unsigned shift = 12 + 9 * (3 - lvl);
        u64 *e = &t[(va >> shift) & 511];
        if (lvl == level)
            return e;
        if ((*e & 3) != 3) {
            /* invalid: a new table; a block: a table of the same mapping one level down */
            u64 *n = pt_alloc();
            if (*e & PTE_VALID) {
                u64 sub = 1UL << (shift - 9);
                u64 attrs = *e & ~0x0000fffffffff000UL & ~3UL;
                u64 oa = *e & 0x0000fffffffff000UL & ~((1UL << shift) - 1);
                for (unsigned i = 0; i < 512; i++)
                    n[i] = (oa + i * sub) | attrs | (lvl + 1 == 3 ? 3UL : 1UL);
            }
            dsb_sy();
            *e = (u64)n | 3UL;
            dsb_sy();
        }
        t = (u64 *)(*e & 0x0000fffffffff000UL);
    }
}

void mmu_enable_identity(void)
{
    build_identity();
    write_sysreg(mair_el1, MAIR_DEVICE_nGnRE | (MAIR_NORMAL_WB << 8));
    u64 tcr = 25UL               /* T0SZ: 39-bit VA */
            | (1UL << 8)         /* IRGN0 WB WA */
            | (1UL << 10)        /* ORGN0 WB WA */
            | (3UL << 12)        /* SH0 inner shareable */
            | (0UL << 14)        /* TG0 4K */
            | (1UL << 23)        /* EPD1: no TTBR1 walks */
            | (2UL << 32);       /* IPS 40 bits */
    write_sysreg(tcr_el1, tcr);
    write_sysreg(ttbr0_el1, (u64)l1_table);
    isb();
    asm volatile("tlbi vmalle1\n dsb nsh\n isb" ::: "memory");
    u64 sctlr = read_sysreg(sctlr_el1);
    sctlr |= (1UL << 0) | (1UL << 2) | (1UL << 12);   /* M, C, I */
    write_sysreg(sctlr_el1, sctlr);
    isb();
}

void mmu_enable_ttbr1(void)
{
    write_sysreg(ttbr1_el1, (u64)l1_table_hi);
    u64 tcr = read_sysreg(tcr_el1);
    tcr &= ~((0x3fUL << 16) | (1UL << 23) | (0xffUL << 24));
    tcr |= (25UL << 16)          /* T1SZ: 39-bit VA, 0xffffff8000000000.. */
         | (1UL << 24) | (1UL << 26) | (3UL << 28)   /* IRGN1, ORGN1 WB WA, SH1 inner */
         | (2UL << 30);          /* TG1 4K */
    write_sysreg(tcr_el1, tcr);
    isb();
    asm volatile("tlbi vmalle1\n dsb nsh\n isb" ::: "memory");
}
