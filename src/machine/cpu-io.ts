/**
 * The exit record shared with native/unicorn/vgic_unicorn.c: one Uint32Array per CPU that the
 * addon fills before calling the machine's handler and reads back after it. Numbers only, so an
 * exit allocates nothing. Keep in step with the C enums.
 */

export const IO_KIND = 0;
export const IO_ID = 2;
export const IO_ADDR_LO = 3;
export const IO_ADDR_HI = 4;
export const IO_SIZE = 5;
export const IO_VAL_LO = 6;
export const IO_VAL_HI = 7;
export const IO_PC_LO = 8;
export const IO_PC_HI = 9;
/** Handler → CPU: end the run after this exit. */
export const IO_STOP = 10;
/** Handler → CPU: the CPU interface's output (0 none, 1 IRQ, 2 FIQ): drives the CPU's inputs. */
export const IO_LINE = 11;
export const IO_INSN = 12;
export const IO_ERR = 13;
export const IO_BLOCKS_LO = 14;
export const IO_BLOCKS_HI = 15;
/** Synchronous exceptions QEMU's own code entered during the last run. */
export const IO_EXCEPTIONS = 16;
/** Handler → CPU: end this run within this many more blocks (a kicked CPU waits for it). */
export const IO_CLAMP = 17;
/** Before run(): host microseconds after which the run ends at a block boundary (0: none). */
export const IO_DEADLINE_US = 18;
/** Running counts (never reset): flushes of this CPU's TLB / translated code that another CPU's
 * broadcast maintenance (TLBI ...IS, IC IALLUIS / IVAU) caused. */
export const IO_TLB_FLUSHES = 19;
export const IO_TB_FLUSHES = 20;
/** Before run(): end the run after this many iterations of a loop of at most 4 blocks (0: never). */
export const IO_SPIN_LIMIT = 21;
/** Runs ended by IO_SPIN_LIMIT (a running count). */
export const IO_SPINS = 22;
/** Pages of translated code dropped because another CPU's IC IVAU named them (a running count). */
export const IO_CODE_PAGES = 23;
/** TLB pages dropped because another CPU's TLBI VA*IS named them (a running count). */
export const IO_TLB_PAGES = 24;
export const IO_WORDS = 32;

export const EXIT_MMIO_READ = 1;
export const EXIT_MMIO_WRITE = 2;
export const EXIT_MRS = 3;
export const EXIT_MSR = 4;
export const EXIT_EXCEPTION = 5;
export const EXIT_UNMAPPED = 6;
/** An exception was routed to EL2 or EL3, where nothing runs on this board: the run ends. */
export const EXIT_ESCAPED = 7;

/**
 * Words of the array a machine's CPUs share (vgic_unicorn.c): masks asking CPU k to flush its TLB /
 * translated code, then per CPU the pages whose code another CPU's IC IVAU invalidated and the
 * virtual pages another CPU's TLBI VA*IS named.
 */
export const SYNC_WORDS = 2 + 8 * 96;

/** run() results. */
export const RUN_BUDGET = 0;
export const RUN_STOPPED = 1;
/** WFI (Unicorn halts the CPU and returns). */
export const RUN_HALTED = 2;
export const RUN_UC_ERROR = 3;

/** uc_err values of a run that hit an unmapped address. */
export const UC_ERR_READ_UNMAPPED = 6;
export const UC_ERR_WRITE_UNMAPPED = 7;
export const UC_ERR_FETCH_UNMAPPED = 8;

/** QEMU's exception numbers as Unicorn's interrupt hook reports them (target/arm/cpu.h). */
export const EXCP_UDEF = 1;
export const EXCP_SWI = 2;
export const EXCP_PREFETCH_ABORT = 3;
export const EXCP_DATA_ABORT = 4;
export const EXCP_BKPT = 7;
export const EXCP_HVC = 11;
export const EXCP_SMC = 13;

/** Register ids of getReg/setReg: X0..X30 are 0..30. */
export const R_SP = 31;
export const R_PC = 32;
export const R_PSTATE = 33;
export const R_ELR_EL1 = 34;
export const R_SPSR_EL1 = 35;
export const R_ESR_EL1 = 36;
export const R_FAR_EL1 = 37;
export const R_VBAR_EL1 = 38;
export const R_SP_EL0 = 39;
export const R_SP_EL1 = 40;
export const R_SCTLR_EL1 = 41;

/** enterException kinds (the vector's offset / 0x80). */
export const VECTOR_SYNC = 0;
export const VECTOR_IRQ = 1;
export const VECTOR_FIQ = 2;
