/* UNDEFINED instructions at EL1 (EC 0, IL 1, ELR = the instruction): UDF, an unallocated encoding,
 * MRS/MSR of an unimplemented register, EL2 and EL3 registers from EL1, SMC without EL3 firmware
 * (PSCI's conduit is HVC). HVC with a function ID the PSCI firmware does not know returns
 * NOT_SUPPORTED (-1) instead of trapping. */
#include "guest.h"

static struct {
    u64 esr, elr;
    u32 count;
} last;

static void sync_handler(struct exc_frame *f, int kind)
{
    (void)kind;
    last.esr = read_sysreg(esr_el1);
    last.elr = f->elr;
    last.count++;
    f->elr += 4;
}

/* Runs one instruction (the asm text) with x0 = 0x99 and reports what it raised. */
#define TRY(name, text)                                                                         \
    do {                                                                                        \
        u64 a_, x0_ = 0x99;                                                                     \
        u32 n_ = last.count;                                                                    \
        asm volatile("adr %1, 1f\n1: " text : "+r"(x0_), "=&r"(a_) :: "memory");                \
        report(name, n_, a_, x0_);                                                              \
    } while (0)

static void report(const char *name, u32 n0, u64 insn, u64 x0)
{
    if (last.count == n0) {
        printf("%s: no exception x0=0x%lx\n", name, x0);
        g_failures++;
        return;
    }
    printf("%s: EC=0x%lx IL=%lu ISS=0x%lx ELR=insn+0x%lx\n", name, (last.esr >> 26) & 0x3f,
           (last.esr >> 25) & 1, last.esr & 0x1ffffff, last.elr - insn);
    char what[96];
    snprintf(what, sizeof(what), "%s: one exception, EC 0 (unknown), IL 1, ISS 0", name);
    CHECK(what, (last.count - n0) * 0x10000000000UL + last.esr, 0x10000000000UL + (1UL << 25));
    snprintf(what, sizeof(what), "%s: ELR = the instruction, x0 unchanged", name);
    CHECK(what, (last.elr - insn) + x0, 0x99);
}

int main(void)
{
    printf("undef: UNDEFINED encodings at EL1, HVC and SMC\n");
    set_sync_handler(sync_handler);

    TRY("udf #0x1234", "udf #0x1234");
    TRY("unallocated 0x02000000", ".inst 0x02000000");
    TRY("unallocated 0x1e3f0000", ".inst 0x1e3f0000");          /* FP data-processing, reserved type */
    TRY("mrs S3_6_C15_C15_7 (unimplemented)", "mrs %0, s3_6_c15_c15_7");
    TRY("msr S3_6_C15_C15_7 (unimplemented)", "msr s3_6_c15_c15_7, %0");
    TRY("mrs S3_0_C15_C0_0 (unimplemented)", "mrs %0, s3_0_c15_c0_0");
    TRY("mrs HCR_EL2", "mrs %0, hcr_el2");
    TRY("msr VBAR_EL2", "msr vbar_el2, %0");
    TRY("mrs SCR_EL3", "mrs %0, scr_el3");
    TRY("msr SCTLR_EL3", "msr sctlr_el3, %0");
    TRY("mrs CNTHCTL_EL2", "mrs %0, cnthctl_el2");
    TRY("smc #0", "smc #0");

    /* HVC: the PSCI firmware answers every function ID; unknown ones return NOT_SUPPORTED */
    u32 n0 = last.count;
    u64 r = psci_call(0x8400001fUL, 0, 0, 0);
    printf("hvc PSCI fn 0x8400001f: x0=0x%lx\n", r);
    CHECK("hvc unknown PSCI function: NOT_SUPPORTED (-1)", r, (u64)-1L);
    r = psci_call(0xc400001fUL, 0, 0, 0);
    CHECK("hvc unknown PSCI SMC64 function: NOT_SUPPORTED (-1)", r, (u64)-1L);
    r = psci_call(0x80000000UL, 0, 0, 0);
    printf("hvc SMCCC fn 0x80000000: x0=0x%lx\n", r);
    CHECK("hvc SMCCC_VERSION: NOT_SUPPORTED (-1)", r, (u64)-1L);
    CHECK("hvc: no exception", last.count - n0, 0);

    printf("undefined instructions taken: %u\n", last.count);
    set_sync_handler(0);
    finish();
}
