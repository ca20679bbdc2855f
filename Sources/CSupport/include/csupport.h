#ifndef CDE_CSUPPORT_H
#define CDE_CSUPPORT_H
#include <stddef.h>
#include <stdint.h>

/// Installs handlers for SIGTERM, SIGUSR1 and SIGINT that record the signal number
/// in a lock-free, async-signal-safe flag (the first signal wins). A second SIGINT
/// ends the process at once (exit status 130). Returns 0, or -1 with errno set.
int cde_signals_install(void);
/// The first stop signal received since installation or the last reset, or 0.
int32_t cde_signals_received(void);
/// Clears the recorded signal (a new one is recorded again).
void cde_signals_reset(void);
/// Records `sig` as if it had been delivered (tests, and the coordinator's own stop).
void cde_signals_raise_flag(int32_t sig);

/// CPU features from cpuid, one bit per entry of the feature table (names as in
/// /proc/cpuinfo: "avx2", "fma", "avx512f", "avx512_bf16", ...); AVX and AVX-512 bits
/// only when the OS saves their registers (XCR0). 0 on other architectures.
uint64_t cde_cpu_features(void);
/// Entries in the feature table.
int32_t cde_cpu_feature_count(void);
/// Name of table entry `i`, or NULL.
const char *cde_cpu_feature_name(int32_t i);
/// Table entry of `name`, or -1.
int32_t cde_cpu_feature_index(const char *name);
/// The `-march` the numeric code was compiled for ("x86-64-v3", "native", or "").
const char *cde_cpu_build_target(void);
/// The features the build needs (names as above, NULL-terminated).
const char *const *cde_build_features_list(void);
/// Writes the features the build needs and this CPU lacks ("avx2, fma") into `buf`
/// (NUL-terminated, cut to `cap`) and returns how many there are. A process whose CPU
/// lacks one never reaches main(): a constructor prints one line and exits with status 1.
int32_t cde_cpu_missing(char *buf, size_t cap);
/// `dst[i]` = `src[i]` rounded to bfloat16, to nearest even (NaN: a quiet NaN), `i < n`;
/// 32 at a time with AVX512_BF16 when the CPU has it.
void cde_bf16_convert(const float *src, uint16_t *dst, size_t n);
#include "fma_peak.h"
#endif
