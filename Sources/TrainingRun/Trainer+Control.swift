import Training
import Collectives

/// Control message the coordinator (rank 0) broadcasts before every step.
struct Control: Equatable {
  var lr: Float = 0
  var weightDecay: Float = 0
  /// Write a checkpoint after this step (a periodic one, or the last step).
  var checkpoint = false
  /// A stop signal arrived on some rank: checkpoint the completed steps, then stop.
  var stop = false
  /// The signal that asked to stop (0 when `stop` is false).
  var signal: Int32 = 0
}

/// What rank 0 decided after an evaluation, broadcast to every rank.
struct EvalDecision: Equatable {
  /// The metric improved: every rank takes part in writing RUN/checkpoints/best.
  var improved = false
  /// Early stopping says to stop.
  var stop = false
}

/// The wire form of the coordinator's messages, the one place they are encoded:
/// 16 bytes `[lr f32, weight decay f32, flags u32, signal i32]`, flag bit 0 `checkpoint` /
/// `improved`, bit 1 `stop`. Only the ranks of one job read it (no file holds it).
struct ControlWire: BitwiseCopyable {
  var lr: Float = 0
  var weightDecay: Float = 0
  var flags: UInt32 = 0
  var signal: Int32 = 0

  static func flags(_ bit0: Bool, _ bit1: Bool) -> UInt32 { (bit0 ? 1 : 0) | (bit1 ? 2 : 0) }
  var bit0: Bool { flags & 1 != 0 }
  var bit1: Bool { flags & 2 != 0 }
}

extension Control {
  var wire: ControlWire {
    ControlWire(lr: lr, weightDecay: weightDecay, flags: ControlWire.flags(checkpoint, stop), signal: signal)
  }
  init(wire w: ControlWire) {
    self.init(lr: w.lr, weightDecay: w.weightDecay, checkpoint: w.bit0, stop: w.bit1, signal: w.signal)
  }
}

extension EvalDecision {
  var wire: ControlWire { ControlWire(flags: ControlWire.flags(improved, stop)) }
  init(wire w: ControlWire) { self.init(improved: w.bit0, stop: w.bit1) }
}

extension Communicator {
  /// Rank `root`'s control message on every rank.
  func broadcast(_ message: Control, root: Int) -> Control {
    var w = message.wire
    broadcast(&w, root: root)
    return Control(wire: w)
  }

  /// Rank `root`'s evaluation decision on every rank.
  func broadcast(_ message: EvalDecision, root: Int) -> EvalDecision {
    var w = message.wire
    broadcast(&w, root: root)
    return EvalDecision(wire: w)
  }
}
