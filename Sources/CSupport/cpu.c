// The CPU's instruction-set extensions, from cpuid (what the processor, or the emulator
// or hypervisor in front of it, reports; not /proc/cpuinfo), and the start-up check that
// the CPU runs what the build targets.
//
// This target is compiled without -march flags (see Package.swift): the check runs as an
// ELF constructor of the executable, before main() and before any code compiled for the
// build's baseline, so a CPU below it gets one error line instead of SIGILL. The shared
// libraries loaded before it (the Swift runtime, Foundation, OpenBLAS, Open MPI, libvips)
// are generic builds.
#include "csupport.h"
#include "cbuildtarget.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CDE_X86 1
#endif

enum { LEAF1, LEAF7, LEAF7_1, LEAFX1 };        // cpuid 1, 7.0, 7.1, 0x80000001
enum { EAX, EBX, ECX, EDX };
enum { OS_NONE, OS_YMM, OS_ZMM, OS_TILE };     // register state the OS must save (XCR0)

// Feature names as in /proc/cpuinfo (Linux's arch/x86/include/asm/cpufeatures.h; SSE3 and LZCNT,
// which /proc/cpuinfo calls "pni" and "abm", as "sse3" and "lzcnt") and
// their cpuid bits (Intel SDM vol. 2A, CPUID; AMD APM vol. 3, appendix E).
static const struct { const char *name; unsigned char leaf, reg, bit, os; } table[] = {
  {"sse3", LEAF1, ECX, 0, OS_NONE},        {"pclmulqdq", LEAF1, ECX, 1, OS_NONE},
  {"ssse3", LEAF1, ECX, 9, OS_NONE},       {"fma", LEAF1, ECX, 12, OS_YMM},
  {"cx16", LEAF1, ECX, 13, OS_NONE},       {"sse4_1", LEAF1, ECX, 19, OS_NONE},
  {"sse4_2", LEAF1, ECX, 20, OS_NONE},     {"movbe", LEAF1, ECX, 22, OS_NONE},
  {"popcnt", LEAF1, ECX, 23, OS_NONE},     {"aes", LEAF1, ECX, 25, OS_NONE},
  {"xsave", LEAF1, ECX, 26, OS_NONE},      {"avx", LEAF1, ECX, 28, OS_YMM},
  {"f16c", LEAF1, ECX, 29, OS_YMM},        {"rdrand", LEAF1, ECX, 30, OS_NONE},
  {"bmi1", LEAF7, EBX, 3, OS_NONE},        {"avx2", LEAF7, EBX, 5, OS_YMM},
  {"bmi2", LEAF7, EBX, 8, OS_NONE},        {"avx512f", LEAF7, EBX, 16, OS_ZMM},
  {"avx512dq", LEAF7, EBX, 17, OS_ZMM},    {"rdseed", LEAF7, EBX, 18, OS_NONE},
  {"adx", LEAF7, EBX, 19, OS_NONE},        {"avx512ifma", LEAF7, EBX, 21, OS_ZMM},
  {"avx512cd", LEAF7, EBX, 28, OS_ZMM},    {"sha_ni", LEAF7, EBX, 29, OS_NONE},
  {"avx512bw", LEAF7, EBX, 30, OS_ZMM},    {"avx512vl", LEAF7, EBX, 31, OS_ZMM},
  {"avx512vbmi", LEAF7, ECX, 1, OS_ZMM},   {"avx512_vbmi2", LEAF7, ECX, 6, OS_ZMM},
  {"gfni", LEAF7, ECX, 8, OS_NONE},        {"vaes", LEAF7, ECX, 9, OS_YMM},
  {"vpclmulqdq", LEAF7, ECX, 10, OS_YMM},  {"avx512_vnni", LEAF7, ECX, 11, OS_ZMM},
  {"avx512_bitalg", LEAF7, ECX, 12, OS_ZMM}, {"avx512_vpopcntdq", LEAF7, ECX, 14, OS_ZMM},
  {"avx512_fp16", LEAF7, EDX, 23, OS_ZMM}, {"avx_vnni", LEAF7_1, EAX, 4, OS_YMM},
  {"avx512_bf16", LEAF7_1, EAX, 5, OS_ZMM}, {"amx_bf16", LEAF7, EDX, 22, OS_TILE},
  {"lahf_lm", LEAFX1, ECX, 0, OS_NONE},
  {"lzcnt", LEAFX1, ECX, 5, OS_NONE},      {"sse4a", LEAFX1, ECX, 6, OS_NONE},
  {"xop", LEAFX1, ECX, 11, OS_YMM},        {"fma4", LEAFX1, ECX, 16, OS_YMM},
};
enum { COUNT = sizeof table / sizeof table[0] };
_Static_assert(COUNT <= 64, "one bit per feature");

int32_t cde_cpu_feature_count(void) { return COUNT; }

const char *cde_cpu_feature_name(int32_t i) { return i >= 0 && i < COUNT ? table[i].name : NULL; }

int32_t cde_cpu_feature_index(const char *name) {
  for (int i = 0; i < COUNT; i++)
    if (strcmp(table[i].name, name) == 0) return i;
  return -1;
}

uint64_t cde_cpu_features(void) {
  uint64_t out = 0;
#ifdef CDE_X86
  unsigned r[4][4] = {{0}};  // [leaf][register]
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) { r[LEAF1][EAX] = a; r[LEAF1][EBX] = b; r[LEAF1][ECX] = c; r[LEAF1][EDX] = d; }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    r[LEAF7][EAX] = a; r[LEAF7][EBX] = b; r[LEAF7][ECX] = c; r[LEAF7][EDX] = d;
    if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) { r[LEAF7_1][EAX] = a; r[LEAF7_1][EBX] = b; }
  }
  if (__get_cpuid(0x80000001u, &a, &b, &c, &d)) { r[LEAFX1][ECX] = c; r[LEAFX1][EDX] = d; }
  // AVX and AVX-512 registers are usable only when the OS saves them: XCR0 bits 1-2
  // (SSE, AVX state), and 5-7 (opmask, ZMM upper halves, ZMM16-31) as well for AVX-512,
  // and 17-18 (XTILECFG, XTILEDATA) for AMX.
  uint64_t xcr0 = 0;
  if (r[LEAF1][ECX] & (1u << 27)) {  // OSXSAVE: xgetbv is available
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = ((uint64_t)hi << 32) | lo;
  }
  int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0, tile = (xcr0 & 0x60000) == 0x60000;
  for (int i = 0; i < COUNT; i++) {
    if (!(r[table[i].leaf][table[i].reg] & (1u << table[i].bit))) continue;
    if ((table[i].os == OS_YMM && !ymm) || (table[i].os == OS_ZMM && !zmm) || (table[i].os == OS_TILE && !tile)) continue;
    out |= (uint64_t)1 << i;
  }
#endif
  return out;
}

const char *cde_cpu_build_target(void) { return cde_build_cpu; }

const char *const *cde_build_features_list(void) { return cde_build_features; }

int32_t cde_cpu_missing(char *buf, size_t cap) {
  uint64_t have = cde_cpu_features();
  int32_t n = 0;
  size_t len = 0;
  if (cap > 0) buf[0] = 0;
  for (const char *const *f = cde_build_features; *f; f++) {
    int32_t i = cde_cpu_feature_index(*f);
    if (i < 0 || (have >> i) & 1) continue;
    n++;
    if (cap > 0 && len < cap - 1) {
      int w = snprintf(buf + len, cap - len, "%s%s", n > 1 ? ", " : "", *f);
      if (w > 0) len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
    }
  }
  return n;
}

// Priority 101, the first user priority: before any other constructor of the executable.
__attribute__((constructor(101))) static void cde_cpu_check(void) {
  char missing[512];
  if (cde_cpu_missing(missing, sizeof missing) == 0) return;
  char line[1024];
  const char *target = strcmp(cde_build_cpu, "native") == 0 ? "-march=native, the CPU of the machine that built it"
                       : cde_build_cpu[0] ? cde_build_cpu : "the compiler's default CPU";
  int n = snprintf(line, sizeof line,
                   "cde: this CPU lacks %s, which this build of cde needs (compiled for %s); "
                   "build one for this CPU with 'make build NATIVE=1'\n", missing, target);
  if (n > 0) {
    ssize_t w = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    (void)w;
  }
  _exit(1);
}
