/* Entry, per-CPU stacks, exception vectors. EL1h, MMU off. */
#define FRAME_SIZE 272

    .section .text.boot, "ax"
    .global _start
_start:
    msr     daifset, #0xf
    mrs     x1, mpidr_el1
    and     x19, x1, #0xff          /* cpu index = Aff0 */
    bl      cpu_common_setup
    /* zero .bss (CPU 0 only; secondaries enter at _secondary_entry) */
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b
2:  dsb     sy
    mov     x0, x19
    bl      lib_main_entry
3:  wfi
    b       3b

/* PSCI CPU_ON entry point: x0 = context id = cpu index */
    .global _secondary_entry
_secondary_entry:
    msr     daifset, #0xf
    mov     x19, x0
    bl      cpu_common_setup
    mov     x0, x19
    bl      lib_secondary_entry
4:  wfi
    b       4b

/* x19 = cpu index. Sets SP_EL1 (SPSel=1), VBAR, CPACR. Clobbers x0-x2. */
cpu_common_setup:
    msr     spsel, #1
    and     x19, x19, #7
    ldr     x0, =__stacks_start
    add     x1, x19, #1
    lsl     x1, x1, #14
    add     x0, x0, x1
    mov     sp, x0
    ldr     x0, =vectors
    msr     vbar_el1, x0
    mov     x0, #(3 << 20)          /* CPACR_EL1.FPEN: no trap */
    msr     cpacr_el1, x0
    isb
    ret

/* uint64_t run_el1t(uint64_t (*fn)(uint64_t), uint64_t arg, void *sp0_top)
 * Runs fn(arg) at EL1t (SPSel=0) on the stack sp0_top. */
    .text
    .global run_el1t
run_el1t:
    stp     x29, x30, [sp, #-16]!
    msr     sp_el0, x2
    mov     x3, x0
    mov     x0, x1
    msr     spsel, #0
    blr     x3
    msr     spsel, #1
    ldp     x29, x30, [sp], #16
    ret

.macro ventry type
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #\type
    b       exc_common
.endm

    .balign 0x800
    .global vectors
vectors:
    ventry 0    /* current EL, SP0: sync */
    ventry 1    /* irq */
    ventry 2    /* fiq */
    ventry 3    /* serror */
    ventry 4    /* current EL, SPx: sync */
    ventry 5
    ventry 6
    ventry 7
    ventry 8    /* lower EL AArch64 */
    ventry 9
    ventry 10
    ventry 11
    ventry 12   /* lower EL AArch32 */
    ventry 13
    ventry 14
    ventry 15

exc_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x1, elr_el1
    mrs     x2, spsr_el1
    stp     x30, x1, [sp, #240]
    str     x2, [sp, #256]
    mov     x1, x0
    mov     x0, sp
    bl      exc_dispatch
    ldp     x30, x1, [sp, #240]
    ldr     x2, [sp, #256]
    msr     elr_el1, x1
    msr     spsr_el1, x2
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #FRAME_SIZE
    eret
