/* C runtime: entry glue, exception dispatch, exit and check helpers, mem*. */
#include "guest.h"

int g_failures;
static exc_handler_t sync_handler, irq_handler, fiq_handler;
static secondary_fn_t secondary_fns[MAX_CPUS];

void *memset(void *d, int c, size_t n)
{
    volatile u8 *p = d;   /* volatile: keep gcc from calling memset recursively */
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    volatile u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

void set_sync_handler(exc_handler_t h) { sync_handler = h; }
void set_irq_handler(exc_handler_t h) { irq_handler = h; }
void set_fiq_handler(exc_handler_t h) { fiq_handler = h; }

static const char *const kind_names[16] = {
    "SYNC_SP0", "IRQ_SP0", "FIQ_SP0", "SERROR_SP0",
    "SYNC", "IRQ", "FIQ", "SERROR",
    "SYNC_LOW64", "IRQ_LOW64", "FIQ_LOW64", "SERROR_LOW64",
    "SYNC_LOW32", "IRQ_LOW32", "FIQ_LOW32", "SERROR_LOW32",
};

void exc_dispatch(struct exc_frame *f, u64 kind);
void exc_dispatch(struct exc_frame *f, u64 kind)
{
    switch (kind & 3) {
    case 0:
        if (sync_handler && kind < 12) {
            sync_handler(f, (int)kind);
            return;
        }
        printf("UNEXPECTED SYNC ESR=0x%lx ELR=0x%lx FAR=0x%lx KIND=%s\n",
               read_sysreg(esr_el1), f->elr, read_sysreg(far_el1), kind_names[kind]);
        exit_status(3);
    case 1:
        if (irq_handler && kind < 12) {
            irq_handler(f, (int)kind);
            return;
        }
        break;
    case 2:
        if (fiq_handler && kind < 12) {
            fiq_handler(f, (int)kind);
            return;
        }
        break;
    default:
        break;
    }
    printf("UNEXPECTED %s ESR=0x%lx ELR=0x%lx\n", kind_names[kind], read_sysreg(esr_el1), f->elr);
    exit_status(3);
}

void lib_main_entry(u64 cpu);
void lib_main_entry(u64 cpu)
{
    (void)cpu;
    exit_status(main());
}

void lib_secondary_entry(u64 cpu);
void lib_secondary_entry(u64 cpu)
{
    secondary_fn_t fn = READ_ONCE(secondary_fns[cpu & 7]);
    if (fn)
        fn((unsigned)cpu);
    psci_cpu_off();
}

void exit_status(int n)
{
    printf("EXIT: STATUS=%d\n", n);
    psci_system_off();
}

void check_u64(const char *what, u64 got, u64 expected)
{
    if (got == expected) {
        printf("ok %s\n", what);
    } else {
        printf("FAIL %s: got 0x%lx expected 0x%lx\n", what, got, expected);
        g_failures++;
    }
}

void check_true(const char *what, int cond)
{
    if (cond) {
        printf("ok %s\n", what);
    } else {
        printf("FAIL %s: got false expected true\n", what);
        g_failures++;
    }
}

void finish(void)
{
    exit_status(g_failures ? 1 : 0);
}

void mask_line(const char *name, u64 value)
{
    printf("MASK %s=0x%lx\n", name, value);
}

void bench_line(const char *name, u64 ns_per_op, u64 ops)
{
    printf("BENCH %s ns_per_op=%lu ops=%lu\n", name, ns_per_op, ops);
}

/* ---- PSCI ---- */
extern char _secondary_entry[];

u64 psci_call(u64 fn, u64 a1, u64 a2, u64 a3)
{
    register u64 x0 asm("x0") = fn;
    register u64 x1 asm("x1") = a1;
    register u64 x2 asm("x2") = a2;
    register u64 x3 asm("x3") = a3;
    asm volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
    return x0;
}

u32 psci_version(void) { return (u32)psci_call(PSCI_VERSION, 0, 0, 0); }

long psci_cpu_on(unsigned cpu, secondary_fn_t fn)
{
    WRITE_ONCE(secondary_fns[cpu & 7], fn);
    dsb_sy();
    return (long)psci_call(PSCI_CPU_ON, cpu, (u64)_secondary_entry, cpu);
}

void psci_cpu_off(void)
{
    psci_call(PSCI_CPU_OFF, 0, 0, 0);
    for (;;)
        wfi();
}

long psci_affinity_info(unsigned cpu) { return (long)psci_call(PSCI_AFFINITY_INFO, cpu, 0, 0); }

void psci_system_off(void)
{
    psci_call(PSCI_SYSTEM_OFF, 0, 0, 0);
    for (;;)
        wfi();
}

void psci_system_reset(void)
{
    psci_call(PSCI_SYSTEM_RESET, 0, 0, 0);
    for (;;)
        wfi();
}

/* ---- timer ---- */
u64 ticks_to_ns(u64 ticks)
{
    u64 f = cntfrq();
    return (ticks / f) * 1000000000UL + ((ticks % f) * 1000000000UL) / f;
}

u64 ns_to_ticks(u64 ns)
{
    u64 f = cntfrq();
    return (ns / 1000000000UL) * f + ((ns % 1000000000UL) * f) / 1000000000UL;
}

void delay_us(u64 us)
{
    u64 end = cntvct() + ns_to_ticks(us * 1000);
    while (cntvct() < end)
        ;
}

void vtimer_set_tval(u32 t) { write_sysreg(cntv_tval_el0, t); isb(); }
void vtimer_set_cval(u64 c) { write_sysreg(cntv_cval_el0, c); isb(); }
void vtimer_ctl(u32 ctl) { write_sysreg(cntv_ctl_el0, ctl); isb(); }
u32 vtimer_get_ctl(void) { return (u32)read_sysreg(cntv_ctl_el0); }
