import CSupport
import Foundation

/// Stop requests from outside: SIGTERM (Slurm, kill), SIGUSR1 (Slurm's
/// `--signal=B:USR1@120` warning, forwarded by mpirun) and SIGINT (Ctrl-C).
///
/// The handlers (C, Sources/CSupport) only store the signal number in an atomic
/// flag, which is async-signal-safe; the trainer polls `received` once per step
/// and the coordinator turns it into "checkpoint, then stop" on every rank.
/// A second SIGINT ends the process at once (status 130).
public enum StopSignal {
  /// Installs the handlers (idempotent). Call early, before training starts.
  public static func install() {
    if cde_signals_install() != 0 {
      FileHandle.standardError.write(Data("warning: cannot install signal handlers: \(String(cString: strerror(errno)))\n".utf8))
    }
  }

  /// The first stop signal received (SIGTERM, SIGUSR1, SIGINT), if any.
  public static var received: Int32? {
    let s = cde_signals_received()
    return s == 0 ? nil : s
  }

  /// Forgets a received signal.
  public static func reset() { cde_signals_reset() }

  /// Records a stop request as if signal `sig` had arrived (tests; in-process stops).
  public static func request(_ sig: Int32) { cde_signals_raise_flag(sig) }

  /// "SIGTERM", "SIGUSR1", "SIGINT" or "signal N".
  public static func name(_ sig: Int32) -> String {
    switch sig {
    case SIGTERM: return "SIGTERM"
    case SIGUSR1: return "SIGUSR1"
    case SIGINT: return "SIGINT"
    default: return "signal \(sig)"
    }
  }

}
