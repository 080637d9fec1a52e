/* Cross-CPU TLB and instruction-cache maintenance (2 CPUs). CPU 1 reads a VA (so its TLB holds the
 * translation), CPU 0 remaps the VA to another page and invalidates with a broadcast TLBI
 * (VAE1IS, VALE1IS, VAAE1IS, VAALE1IS, VMALLE1IS), then CPU 1 reads again and must see the new
 * page. For code: CPU 1 calls a function, CPU 0 rewrites it and does DC CVAU + IC IVAU (then
 * IC IALLUIS), CPU 1 calls again and must run the new instructions; and a code VA remapped to
 * another page under CPU 1 (TLBI VAE1IS). CPU 1 records, CPU 0 prints. */
#include "guest.h"

#define TEST_VA 0x100000000UL
#define NVAR 5
#define CODE_VA (TEST_VA + 0x10000UL)

static u64 page_a[512] __attribute__((aligned(4096)));
static u64 page_b[512] __attribute__((aligned(4096)));
static u32 code_page[1024] __attribute__((aligned(4096)));
static u32 code_p1[1024] __attribute__((aligned(4096)));
static u32 code_p2[1024] __attribute__((aligned(4096)));
static u64 *ptes[NVAR];
static u64 *code_pte;

/* CPU 0 sets cmd = n (and waits for done = n); CPU 1 runs action n and records the value. */
static volatile u32 cmd, done;
static volatile u64 value;
enum { A_READ = 1, A_CALL_CODE = 2, A_CALL_VA = 3, A_QUIT = 4 };
static volatile u32 action;
static volatile u64 action_va;

#define MOV_W0(n) (0x52800000u | ((u32)(n) << 5))
#define RET       0xd65f03c0u

static void secondary(unsigned cpu)
{
    (void)cpu;
    mmu_enable_identity();
    for (u32 seq = 1;; seq++) {
        while (READ_ONCE(cmd) != seq)
            ;
        dmb_ish();
        u32 a = READ_ONCE(action);
        u64 v = 0;
        if (a == A_READ)
            v = *(volatile u64 *)READ_ONCE(action_va);
        else if (a == A_CALL_CODE || a == A_CALL_VA) {
            isb();
            v = ((u32 (*)(void))READ_ONCE(action_va))();
        }
        WRITE_ONCE(value, v);
        dmb_ish();
        WRITE_ONCE(done, seq);
        if (a == A_QUIT)
            return;
    }
}

static u32 seq;
static u64 on_cpu1(u32 a, u64 va)
{
    WRITE_ONCE(action, a);
    WRITE_ONCE(action_va, va);
    dmb_ish();
    WRITE_ONCE(cmd, ++seq);
    while (READ_ONCE(done) != seq)
        ;
    dmb_ish();
    return READ_ONCE(value);
}

static const char *const tlbi_names[NVAR] = {"vae1is", "vale1is", "vaae1is", "vaale1is", "vmalle1is"};

static void tlbi_is(int variant, u64 va)
{
    u64 op = (va >> 12) & ((1UL << 44) - 1);
    asm volatile("dsb ishst" ::: "memory");
    switch (variant) {
    case 0: asm volatile("tlbi vae1is, %0" :: "r"(op) : "memory"); break;
    case 1: asm volatile("tlbi vale1is, %0" :: "r"(op) : "memory"); break;
    case 2: asm volatile("tlbi vaae1is, %0" :: "r"(op) : "memory"); break;
    case 3: asm volatile("tlbi vaale1is, %0" :: "r"(op) : "memory"); break;
    default: asm volatile("tlbi vmalle1is" ::: "memory"); break;
    }
    asm volatile("dsb ish\n isb" ::: "memory");
}

static void sync_icache(void *p)
{
    asm volatile("dc cvau, %0\n dsb ish\n ic ivau, %0\n dsb ish\n isb" :: "r"(p) : "memory");
}

int main(void)
{
    char what[96];
    printf("smp_tlb: cross-CPU TLB and I-cache maintenance\n");
    for (int i = 0; i < 512; i++) {
        page_a[i] = 0xaaaa000000000000UL + (u64)i;
        page_b[i] = 0xbbbb000000000000UL + (u64)i;
    }
    for (int i = 0; i < NVAR; i++) {
        ptes[i] = mmu_entry(0, TEST_VA + (u64)i * 0x1000, 3);
        *ptes[i] = PTE_NORMAL_PAGE((u64)page_a) | PTE_PXN | PTE_UXN;
    }
    code_p1[0] = MOV_W0(4); code_p1[1] = RET;
    code_p2[0] = MOV_W0(5); code_p2[1] = RET;
    code_pte = mmu_entry(0, CODE_VA, 3);
    *code_pte = PTE_NORMAL_PAGE((u64)code_p1) | PTE_AP_RO | PTE_UXN;
    code_page[0] = MOV_W0(1); code_page[1] = RET;
    sync_icache(code_p1);
    sync_icache(code_p2);
    sync_icache(code_page);
    mmu_enable_identity();
    CHECK("CPU_ON 1", psci_cpu_on(1, secondary), 0);

    for (int i = 0; i < NVAR; i++) {
        u64 va = TEST_VA + (u64)i * 0x1000 + 8 * (u64)i;
        u64 before = on_cpu1(A_READ, va);
        *ptes[i] = PTE_NORMAL_PAGE((u64)page_b) | PTE_PXN | PTE_UXN;
        tlbi_is(i, va);
        u64 cpu0 = *(volatile u64 *)va;
        u64 after = on_cpu1(A_READ, va);
        printf("tlbi %s: cpu1 before=0x%lx after=0x%lx cpu0=0x%lx\n", tlbi_names[i], before, after, cpu0);
        snprintf(what, sizeof(what), "tlbi %s: CPU 1 sees page B after the remap", tlbi_names[i]);
        CHECK(what, after, page_b[i]);
    }

    u64 r1 = on_cpu1(A_CALL_CODE, (u64)code_page);
    WRITE_ONCE(code_page[0], MOV_W0(2));
    sync_icache(code_page);
    u64 r2 = on_cpu1(A_CALL_CODE, (u64)code_page);
    WRITE_ONCE(code_page[0], MOV_W0(3));
    asm volatile("dc cvau, %0\n dsb ish\n ic ialluis\n dsb ish\n isb" :: "r"(code_page) : "memory");
    u64 r3 = on_cpu1(A_CALL_CODE, (u64)code_page);
    printf("code rewrite: cpu1 calls return %lu, then %lu (ic ivau), then %lu (ic ialluis)\n", r1, r2, r3);
    CHECK("code rewrite: first call returns 1", r1, 1);
    CHECK("code rewrite + ic ivau: CPU 1 runs the new code", r2, 2);
    CHECK("code rewrite + ic ialluis: CPU 1 runs the new code", r3, 3);

    u64 c1 = on_cpu1(A_CALL_VA, CODE_VA);
    *code_pte = PTE_NORMAL_PAGE((u64)code_p2) | PTE_AP_RO | PTE_UXN;
    tlbi_is(0, CODE_VA);
    u64 c2 = on_cpu1(A_CALL_VA, CODE_VA);
    printf("code VA remap: cpu1 calls return %lu, then %lu (tlbi vae1is)\n", c1, c2);
    CHECK("code VA remap: CPU 1 runs the new page", c2, 5);

    on_cpu1(A_QUIT, 0);
    for (int spins = 0; psci_affinity_info(1) != 1 && spins < 1000000; spins++)
        ;
    CHECK("CPU 1 off", psci_affinity_info(1), 1);
    finish();
}
