/* Data and instruction aborts from the guest's own stage-1 tables: translation faults at levels
 * 1, 2 and 3, a permission fault, an access-flag fault, an execute-never fetch, a fetch from an
 * unmapped page, a fetch from a page mapped to no device (an external abort), and memory mapped
 * high (just below 4 GiB through TTBR0, and through TTBR1). Each
 * abort is caught, printed, and then either fixed (the mapping is made, the instruction retried)
 * or skipped. */
#include "guest.h"

#define TEST_VA    0x100000000UL            /* level-1 entry 4: unused by the identity map */
#define HIGH0_VA   0xfffff000UL             /* TTBR0, just below 4 GiB */
#define HIGH1_VA   (TTBR1_VA_BASE + 0x200000UL)
#define NO_DEVICE_PA 0x48000000UL           /* RAM is 0x40000000 + 128 MiB (both boards' -m 128M) */

static u64 pages[8][512] __attribute__((aligned(4096)));
static u32 code_page[1024] __attribute__((aligned(4096)));

enum { SKIP, FIX };
static struct {
    int mode;
    int ttbr1;          /* FIX: the level-3 descriptor of va (tables made by the handler) ... */
    u64 va;
    u64 desc;           /* ... becomes this, then the retry */
} fix;
static struct {
    u64 esr, far, elr, spsr;
    int kind;
    u32 count;
} last;

static void tlbi_va(u64 va)
{
    asm volatile("dsb ishst\n tlbi vae1, %0\n dsb ish\n isb" :: "r"((va >> 12) & ((1UL << 44) - 1)) : "memory");
}

static void sync_handler(struct exc_frame *f, int kind)
{
    last.esr = read_sysreg(esr_el1);
    last.far = read_sysreg(far_el1);
    last.elr = f->elr;
    last.spsr = f->spsr;
    last.kind = kind;
    last.count++;
    if (fix.mode == FIX) {
        *mmu_entry(fix.ttbr1, fix.va, 3) = fix.desc;
        tlbi_va(last.far);
        fix.mode = SKIP;     /* a second fault on the retry is skipped, not looped on */
    } else {
        f->elr += 4;
    }
}

static u64 ec(void) { return (last.esr >> 26) & 0x3f; }

/* One line per abort: the ISS fields defined for a data or instruction abort. */
static void report(const char *what, u64 insn)
{
    u64 iss = last.esr & 0x1ffffff;
    if (ec() == 0x25 || ec() == 0x24)
        printf("%s: EC=0x%lx IL=%lu ISV=%lu DFSC=0x%02lx WnR=%lu S1PTW=%lu CM=%lu EA=%lu FnV=%lu FAR=0x%lx ELR=insn+0x%lx\n",
               what, ec(), (last.esr >> 25) & 1, iss >> 24, iss & 0x3f, (iss >> 6) & 1, (iss >> 7) & 1,
               (iss >> 8) & 1, (iss >> 9) & 1, (iss >> 10) & 1, last.far, last.elr - insn);
    else
        printf("%s: EC=0x%lx IL=%lu IFSC=0x%02lx S1PTW=%lu EA=%lu FnV=%lu FAR=0x%lx ELR=insn+0x%lx\n",
               what, ec(), (last.esr >> 25) & 1, iss & 0x3f, (iss >> 7) & 1, (iss >> 9) & 1, (iss >> 10) & 1,
               last.far, last.elr - insn);
}

static u64 load_at(u64 va, u64 *insn)
{
    u64 v = 0x5555, a;
    asm volatile("adr %1, 1f\n1: ldr %0, [%2]" : "+r"(v), "=&r"(a) : "r"(va) : "memory");
    *insn = a;
    return v;
}

static void store_at(u64 va, u64 v, u64 *insn)
{
    u64 a;
    asm volatile("adr %0, 1f\n1: str %1, [%2]" : "=&r"(a) : "r"(v), "r"(va) : "memory");
    *insn = a;
}

static void arm_fix(u64 va, u64 desc)
{
    fix.ttbr1 = 0;
    fix.va = va;
    fix.desc = desc;
    fix.mode = FIX;
}

static u64 pa_of(int i) { return (u64)pages[i]; }
static u64 pattern(int i) { return 0x1111111111111111UL * (u64)(i + 1); }

int main(void)
{
    u64 insn, v;
    u32 n0;
    printf("pagefault: aborts from the guest's own page tables\n");
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 512; j++)
            pages[i][j] = pattern(i) + (u64)j;
    /* TEST_VA -> page 0 (creates TEST_VA's level-2 and level-3 tables) */
    *mmu_entry(0, TEST_VA, 3) = PTE_NORMAL_PAGE(pa_of(0)) | PTE_PXN | PTE_UXN;
    mmu_enable_identity();
    set_sync_handler(sync_handler);

    v = load_at(TEST_VA + 8, &insn);
    CHECK("mapped page reads page 0", v, pattern(0) + 1);
    CHECK("no exception", last.count, 0);

    /* level-3 translation fault: fixed by mapping page 1, then retried */
    arm_fix(TEST_VA + 0x1000, PTE_NORMAL_PAGE(pa_of(1)) | PTE_PXN | PTE_UXN);
    v = load_at(TEST_VA + 0x1000 + 16, &insn);
    report("load L3 unmapped", insn);
    CHECK("L3: DFSC = 0x07 (translation, level 3)", last.esr & 0x3f, 0x07);
    CHECK("L3: retried load reads page 1", v, pattern(1) + 2);

    /* level-2 translation fault */
    n0 = last.count;
    arm_fix(TEST_VA + 0x200000, PTE_NORMAL_PAGE(pa_of(2)) | PTE_PXN | PTE_UXN);
    v = load_at(TEST_VA + 0x200000 + 24, &insn);
    report("load L2 unmapped", insn);
    CHECK("L2: DFSC = 0x06 (translation, level 2)", last.esr & 0x3f, 0x06);
    CHECK("L2: one exception", last.count - n0, 1);
    CHECK("L2: retried load reads page 2", v, pattern(2) + 3);

    /* level-1 translation fault, a store */
    n0 = last.count;
    arm_fix(TEST_VA + 0x40000000UL, PTE_NORMAL_PAGE(pa_of(3)) | PTE_PXN | PTE_UXN);
    store_at(TEST_VA + 0x40000000UL + 32, 0xfeedfacecafebeefUL, &insn);
    report("store L1 unmapped", insn);
    CHECK("L1: DFSC = 0x05 (translation, level 1), WnR", last.esr & 0x7f, 0x45);
    CHECK("L1: one exception", last.count - n0, 1);
    CHECK("L1: retried store reached page 3", READ_ONCE(pages[3][4]), 0xfeedfacecafebeefUL);

    /* skipped (not fixed) fault: the destination register keeps its value */
    n0 = last.count;
    v = load_at(TEST_VA + 0x3000, &insn);
    report("load unmapped, skipped", insn);
    CHECK("skipped: destination unchanged", v, 0x5555);
    CHECK("skipped: one exception", last.count - n0, 1);

    /* permission fault: a read-only page, read then written */
    u64 *pte = mmu_entry(0, TEST_VA + 0x4000, 3);
    *pte = PTE_NORMAL_PAGE(pa_of(4)) | PTE_AP_RO | PTE_PXN | PTE_UXN;
    tlbi_va(TEST_VA + 0x4000);
    n0 = last.count;
    v = load_at(TEST_VA + 0x4000, &insn);
    CHECK("read-only page: read works", v, pattern(4));
    CHECK("read-only page: read takes no exception", last.count - n0, 0);
    arm_fix(TEST_VA + 0x4000, PTE_NORMAL_PAGE(pa_of(4)) | PTE_PXN | PTE_UXN);
    store_at(TEST_VA + 0x4000 + 8, 0x4242, &insn);
    report("store read-only", insn);
    CHECK("RO: DFSC = 0x0f (permission, level 3), WnR", last.esr & 0x7f, 0x4f);
    CHECK("RO: one exception", last.count - n0, 1);
    CHECK("RO: retried store reached page 4", READ_ONCE(pages[4][1]), 0x4242);

    /* access-flag fault: AF = 0 and no hardware AF update (TCR_EL1.HA = 0) */
    n0 = last.count;
    pte = mmu_entry(0, TEST_VA + 0x5000, 3);
    *pte = (PTE_NORMAL_PAGE(pa_of(5)) & ~PTE_AF) | PTE_PXN | PTE_UXN;
    tlbi_va(TEST_VA + 0x5000);
    arm_fix(TEST_VA + 0x5000, PTE_NORMAL_PAGE(pa_of(5)) | PTE_PXN | PTE_UXN);
    v = load_at(TEST_VA + 0x5000 + 40, &insn);
    report("load AF=0", insn);
    CHECK("AF: DFSC = 0x0b (access flag, level 3)", last.esr & 0x3f, 0x0b);
    CHECK("AF: one exception", last.count - n0, 1);
    CHECK("AF: retried load reads page 5", v, pattern(5) + 5);

    /* execute-never: code at a PXN page; fixed by clearing PXN, then the call is retried */
    code_page[0] = 0x52800540;      /* mov w0, #42 */
    code_page[1] = 0xd65f03c0;      /* ret */
    asm volatile("dc cvau, %0\n dsb ish\n ic iallu\n dsb ish\n isb" :: "r"(code_page) : "memory");
    pte = mmu_entry(0, TEST_VA + 0x6000, 3);
    *pte = PTE_NORMAL_PAGE((u64)code_page) | PTE_AP_RO | PTE_PXN | PTE_UXN;
    tlbi_va(TEST_VA + 0x6000);
    n0 = last.count;
    arm_fix(TEST_VA + 0x6000, PTE_NORMAL_PAGE((u64)code_page) | PTE_AP_RO | PTE_UXN);
    u32 r = ((u32 (*)(void))(TEST_VA + 0x6000))();
    report("fetch PXN", TEST_VA + 0x6000);
    CHECK("PXN: EC = 0x21 (instruction abort, same EL)", ec(), 0x21);
    CHECK("PXN: IFSC = 0x0f (permission, level 3)", last.esr & 0x3f, 0x0f);
    CHECK("PXN: one exception", last.count - n0, 1);
    CHECK("PXN: retried call returns 42", r, 42);

    /* fetch from an unmapped page: mapped by the handler, the call retried */
    n0 = last.count;
    arm_fix(TEST_VA + 0x7000, PTE_NORMAL_PAGE((u64)code_page) | PTE_AP_RO | PTE_UXN);
    r = ((u32 (*)(void))(TEST_VA + 0x7000))();
    report("fetch unmapped", TEST_VA + 0x7000);
    CHECK("fetch: IFSC = 0x07 (translation, level 3)", last.esr & 0x3f, 0x07);
    CHECK("fetch: one exception", last.count - n0, 1);
    CHECK("fetch: retried call returns 42", r, 42);

    /* fetch from a valid mapping of a physical address with nothing behind it (just past the
     * 128 MiB of RAM): a synchronous external abort, ELR and FAR the virtual address */
    n0 = last.count;
    *mmu_entry(0, TEST_VA + 0x8000, 3) = PTE_NORMAL_PAGE(NO_DEVICE_PA) | PTE_AP_RO | PTE_UXN;
    tlbi_va(TEST_VA + 0x8000);
    arm_fix(TEST_VA + 0x8000, PTE_NORMAL_PAGE((u64)code_page) | PTE_AP_RO | PTE_UXN);
    r = ((u32 (*)(void))(TEST_VA + 0x8000))();
    report("fetch no device", TEST_VA + 0x8000);
    CHECK("no device: EC = 0x21, IFSC = 0x10 (external abort)", last.esr >> 26 << 8 | (last.esr & 0x3f), 0x2110);
    CHECK("no device: FAR is the virtual address", last.far, TEST_VA + 0x8000);
    CHECK("no device: one exception", last.count - n0, 1);
    CHECK("no device: retried call returns 42", r, 42);

    /* memory mapped high in TTBR0: the last page below 4 GiB */
    *mmu_entry(0, HIGH0_VA, 3) = PTE_NORMAL_PAGE(pa_of(6)) | PTE_PXN | PTE_UXN;
    tlbi_va(HIGH0_VA);
    n0 = last.count;
    v = load_at(HIGH0_VA + 0xff8, &insn);
    CHECK("VA 0xfffffff8 reads page 6", v, pattern(6) + 511);
    store_at(HIGH0_VA + 0x10, 0x600d, &insn);
    CHECK("store at VA 0xfffff010 reached page 6", READ_ONCE(pages[6][2]), 0x600d);
    CHECK("high TTBR0: no exception", last.count - n0, 0);
    v = load_at(HIGH0_VA - 0x1000, &insn);
    report("load below high page", insn);
    CHECK("below high page: DFSC = 0x07", last.esr & 0x3f, 0x07);

    /* TTBR1: fault on the empty table, mapped by the handler, retried */
    mmu_enable_ttbr1();
    n0 = last.count;
    arm_fix(HIGH1_VA, PTE_NORMAL_PAGE(pa_of(7)) | PTE_PXN | PTE_UXN);
    fix.ttbr1 = 1;
    v = load_at(HIGH1_VA + 0x20, &insn);
    report("load TTBR1 unmapped", insn);
    CHECK("TTBR1: DFSC = 0x05 (empty table: level 1)", last.esr & 0x3f, 0x05);
    CHECK("TTBR1: one exception", last.count - n0, 1);
    CHECK("TTBR1: retried load reads page 7", v, pattern(7) + 4);
    n0 = last.count;
    v = load_at(TTBR1_VA_BASE + 0x40000000UL, &insn);
    report("load TTBR1 L1 unmapped, skipped", insn);
    CHECK("TTBR1 L1: DFSC = 0x05", last.esr & 0x3f, 0x05);
    v = load_at(HIGH1_VA + 0x400000UL, &insn);
    report("load TTBR1 L2 unmapped, skipped", insn);
    CHECK("TTBR1 L2: DFSC = 0x06", last.esr & 0x3f, 0x06);
    v = load_at(HIGH1_VA + 0x1000, &insn);
    report("load TTBR1 L3 unmapped, skipped", insn);
    CHECK("TTBR1 L3: DFSC = 0x07", last.esr & 0x3f, 0x07);
    CHECK("TTBR1 skipped: three exceptions", last.count - n0, 3);
    store_at(HIGH1_VA + 0xff0, 0x7777, &insn);
    CHECK("store through TTBR1 reached page 7", READ_ONCE(pages[7][510]), 0x7777);
    asm volatile("at s1e1r, %0\n isb" :: "r"(HIGH1_VA) : "memory");
    CHECK("AT S1E1R TTBR1 VA -> page 7", read_sysreg(par_el1) & 0x0000fffffffff001UL, pa_of(7));
    asm volatile("at s1e1r, %0\n isb" :: "r"(TEST_VA + 0x3000) : "memory");
    u64 par = read_sysreg(par_el1);
    printf("AT S1E1R unmapped: PAR.F=%lu FST=0x%02lx\n", par & 1, (par >> 1) & 0x3f);

    printf("aborts taken: %u\n", last.count);
    set_sync_handler(0);
    finish();
}
