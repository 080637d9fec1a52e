/* Tiny identity-mapping MMU set-up: 4K granule, 39-bit VA, 1 GiB level-1 blocks.
 * 0..1G: Device-nGnRE (GIC, UART, ...); 1G..2G (RAM at 0x40000000): Normal write-back. */
#include "guest.h"

static u64 l1_table[512] __attribute__((aligned(4096)));

#define MAIR_DEVICE_nGnRE 0x04UL
#define MAIR_NORMAL_WB    0xffUL
#define ATTR_DEVICE 0
#define ATTR_NORMAL 1
#define DESC_BLOCK  1UL
#define DESC_AF     (1UL << 10)
#define DESC_SH_INNER (3UL << 8)
#define DESC_PXN    (1UL << 53)
#define DESC_UXN    (1UL << 54)

void mmu_enable_identity(void)
{
    for (unsigned i = 0; i < 512; i++)
        l1_table[i] = 0;
    l1_table[0] = 0x00000000UL | DESC_BLOCK | DESC_AF | (ATTR_DEVICE << 2) | DESC_PXN | DESC_UXN;
    l1_table[1] = 0x40000000UL | DESC_BLOCK | DESC_AF | DESC_SH_INNER | (ATTR_NORMAL << 2);
    dsb_sy();

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
