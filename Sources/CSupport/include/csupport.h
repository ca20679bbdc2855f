#ifndef CDE_CSUPPORT_H
#define CDE_CSUPPORT_H
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
#endif
