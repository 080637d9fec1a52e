/* Synchronous exceptions taken by the guest's own vectors: SVC (EL1h, EL1t), BRK, UDF, data aborts. */
#include "guest.h"

#define UNASSIGNED_ADDR 0x09100000UL   /* a hole in QEMU virt's map (between fw devices and virtio) */

static struct {
    u64 esr, far, elr, spsr, sp;
    int kind;
    u32 count;
} last;

static void sync_handler(struct exc_frame *f, int kind)
{
    last.esr = read_sysreg(esr_el1);
    last.far = read_sysreg(far_el1);
    last.elr = f->elr;
    last.spsr = f->spsr;
    last.sp = (u64)f + sizeof(*f);
    last.kind = kind;
    last.count++;
    u32 ec = (u32)(last.esr >> 26) & 0x3f;
    if (ec != 0x15)          /* SVC returns to the next instruction; skip the others */
        f->elr += 4;
}

static u64 ec(void) { return (last.esr >> 26) & 0x3f; }
static u64 spsr_fields(void) { return last.spsr & 0xf00003cfUL; }   /* NZCV, DAIF, M[3:0] */

struct result {
    u64 sp_before, sp_after, nzcv_after, ret_addr;
};

static void do_svc(struct result *r, u64 nzcv)
{
    u64 spb, spa, nz, lbl;
    asm volatile("mov %0, sp\n"
                 "adr %3, 1f\n"
                 "msr nzcv, %4\n"
                 "svc #0x42\n"
                 "1: mrs %2, nzcv\n"
                 "mov %1, sp\n"
                 : "=&r"(spb), "=&r"(spa), "=&r"(nz), "=&r"(lbl) : "r"(nzcv) : "memory", "cc");
    r->sp_before = spb; r->sp_after = spa; r->nzcv_after = nz; r->ret_addr = lbl;
}

static struct result el1t_res;
static u64 el1t_fn(u64 arg)
{
    do_svc(&el1t_res, arg);
    return read_sysreg(spsel);
}

static u8 sp0_stack[4096] __attribute__((aligned(16)));

int main(void)
{
    struct result r;
    printf("exceptions: guest vectors, synchronous exceptions\n");
    set_sync_handler(sync_handler);
    CHECK("VBAR_EL1 = vectors", read_sysreg(vbar_el1), (u64)vectors);
    CHECK("SPSel = 1 (EL1h)", read_sysreg(spsel), 1);

    /* SVC from EL1h, DAIF masked, NZCV = N|C */
    do_svc(&r, 0xa0000000UL);
    printf("svc EL1h: kind=%d EC=0x%lx IL=%lu ISS=0x%lx SPSR(NZCV,DAIF,M)=0x%lx\n", last.kind, ec(),
           (last.esr >> 25) & 1, last.esr & 0x1ffffff, spsr_fields());
    CHECK("svc EL1h: ELR = next instruction", last.elr, r.ret_addr);
    CHECK("svc EL1h: SP preserved", r.sp_after, r.sp_before);
    CHECK("svc EL1h: handler frame on SP_EL1 below caller SP", last.sp <= r.sp_before, 1);
    CHECK("svc EL1h: NZCV preserved", r.nzcv_after, 0xa0000000UL);
    CHECK("svc EL1h: SPSR = NZCV|DAIF|EL1h", spsr_fields(), 0xa00003c5UL);

    /* SVC with IRQs unmasked (DAIF = D A F), NZCV = Z|V */
    irq_enable();
    do_svc(&r, 0x50000000UL);
    irq_disable();
    CHECK("svc I unmasked: SPSR = Z|V|D|A|F|EL1h", spsr_fields(), 0x50000345UL);
    CHECK("svc I unmasked: NZCV preserved", r.nzcv_after, 0x50000000UL);
    CHECK("svc I unmasked: SP preserved", r.sp_after, r.sp_before);

    /* SVC from EL1t on a separate SP_EL0 stack */
    u64 top = (u64)sp0_stack + sizeof(sp0_stack);
    u64 spsel_inside = run_el1t(el1t_fn, 0x60000000UL, (void *)top);
    printf("svc EL1t: kind=%d EC=0x%lx ISS=0x%lx SPSR(NZCV,DAIF,M)=0x%lx\n", last.kind, ec(),
           last.esr & 0x1ffffff, spsr_fields());
    CHECK("svc EL1t: SPSel was 0 inside", spsel_inside, 0);
    CHECK("svc EL1t: taken through the SP0 vector (kind 0)", last.kind, 0);
    CHECK("svc EL1t: SPSR.M = EL1t", last.spsr & 0xf, 4);
    CHECK("svc EL1t: SPSR = Z|C|DAIF|EL1t", spsr_fields(), 0x600003c4UL);
    CHECK("svc EL1t: SP_EL0 preserved", el1t_res.sp_after, el1t_res.sp_before);
    CHECK("svc EL1t: ran on the SP_EL0 stack", el1t_res.sp_before > (u64)sp0_stack && el1t_res.sp_before <= top, 1);
    CHECK("svc EL1t: handler used SP_EL1, not SP_EL0", last.sp > top || last.sp <= (u64)sp0_stack, 1);
    CHECK("svc EL1t: NZCV preserved", el1t_res.nzcv_after, 0x60000000UL);
    CHECK("svc EL1t: ELR = next instruction", last.elr, el1t_res.ret_addr);
    CHECK("back at EL1h", read_sysreg(spsel), 1);

    /* BRK */
    u64 spb, spa, addr;
    asm volatile("mov %0, sp\n adr %2, 1f\n 1: brk #0x7\n mov %1, sp" : "=&r"(spb), "=&r"(spa), "=&r"(addr) :: "memory");
    printf("brk: EC=0x%lx ISS=0x%lx\n", ec(), last.esr & 0x1ffffff);
    CHECK("brk: EC = 0x3c", ec(), 0x3c);
    CHECK("brk: ISS = imm16 7", last.esr & 0xffff, 7);
    CHECK("brk: ELR = the brk", last.elr, addr);
    CHECK("brk: SP preserved", spa, spb);
    CHECK("brk: SPSR.M = EL1h", last.spsr & 0xf, 5);

    /* undefined instruction */
    asm volatile("mov %0, sp\n adr %2, 1f\n 1: udf #0\n mov %1, sp" : "=&r"(spb), "=&r"(spa), "=&r"(addr) :: "memory");
    printf("udf: EC=0x%lx IL=%lu ISS=0x%lx\n", ec(), (last.esr >> 25) & 1, last.esr & 0x1ffffff);
    CHECK("udf: EC = 0 (unknown)", ec(), 0);
    CHECK("udf: ELR = the udf", last.elr, addr);
    CHECK("udf: SP preserved", spa, spb);

    /* data abort: read and write of an unassigned address */
    u32 count0 = last.count;
    u64 val = 0x55;
    asm volatile("mov %0, sp\n adr %3, 1f\n 1: ldr %w2, [%4]\n mov %1, sp"
                 : "=&r"(spb), "=&r"(spa), "+r"(val), "=&r"(addr) : "r"(UNASSIGNED_ADDR) : "memory");
    u64 iss = last.esr & 0x1ffffff;
    printf("load 0x%lx: EC=0x%lx DFSC=0x%lx WnR=%lu FnV=%lu FAR=0x%lx\n", UNASSIGNED_ADDR, ec(), iss & 0x3f,
           (iss >> 6) & 1, (iss >> 10) & 1, last.far);
    CHECK("load: one exception", last.count - count0, 1);
    CHECK("load: EC = 0x25 (data abort, same EL)", ec(), 0x25);
    CHECK("load: DFSC = 0x10 (synchronous external abort)", iss & 0x3f, 0x10);
    CHECK("load: FAR", last.far, UNASSIGNED_ADDR);
    CHECK("load: ELR = the load", last.elr, addr);
    CHECK("load: destination register unchanged", val, 0x55);
    CHECK("load: SP preserved", spa, spb);
    asm volatile("mov %0, sp\n adr %2, 1f\n 1: str %w3, [%4]\n mov %1, sp"
                 : "=&r"(spb), "=&r"(spa), "=&r"(addr) : "r"(0x1234), "r"(UNASSIGNED_ADDR + 8) : "memory");
    iss = last.esr & 0x1ffffff;
    printf("store 0x%lx: EC=0x%lx DFSC=0x%lx WnR=%lu FnV=%lu FAR=0x%lx\n", UNASSIGNED_ADDR + 8, ec(), iss & 0x3f,
           (iss >> 6) & 1, (iss >> 10) & 1, last.far);
    CHECK("store: EC = 0x25", ec(), 0x25);
    CHECK("store: WnR = 1", (iss >> 6) & 1, 1);
    CHECK("store: FAR", last.far, UNASSIGNED_ADDR + 8);
    CHECK("store: ELR = the store", last.elr, addr);
    CHECK("store: SP preserved", spa, spb);

    CHECK("total synchronous exceptions", last.count, 7);
    set_sync_handler(0);
    finish();
}
