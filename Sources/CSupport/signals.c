// Async-signal-safe stop flag: the handler only performs one atomic
// compare-and-swap on a lock-free int and, for a repeated SIGINT, _exit().
#include "csupport.h"
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static _Atomic int32_t received_signal = 0;

static void on_signal(int sig) {
  int32_t expected = 0;
  if (!atomic_compare_exchange_strong(&received_signal, &expected, (int32_t)sig)) {
    // Already stopping: a second interrupt from the keyboard means "now".
    if (sig == SIGINT) _exit(130);
  }
}

int cde_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGTERM, &sa, NULL) != 0) return -1;
  if (sigaction(SIGUSR1, &sa, NULL) != 0) return -1;
  if (sigaction(SIGINT, &sa, NULL) != 0) return -1;
  return 0;
}

int32_t cde_signals_received(void) { return atomic_load(&received_signal); }

void cde_signals_reset(void) { atomic_store(&received_signal, 0); }

void cde_signals_raise_flag(int32_t sig) {
  int32_t expected = 0;
  atomic_compare_exchange_strong(&received_signal, &expected, sig);
}
