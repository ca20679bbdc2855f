#ifndef CDE_CBUILDTARGET_H
#define CDE_CBUILDTARGET_H
/// The instruction-set extensions the numeric targets were compiled for, as the
/// compiler's predefined macros state them (`__AVX2__`, `__FMA__`, ...): this file is
/// compiled with the same `-march` as those targets. Names as in /proc/cpuinfo, the
/// list ends with NULL. Data only: nothing here executes, so reading it is safe on
/// any CPU (CSupport's start-up check compares it with what cpuid reports).
extern const char *const cde_build_features[];
/// The `-march` value of the build ("x86-64-v3", "native", or "" for the compiler's default).
extern const char cde_build_cpu[];
#endif
