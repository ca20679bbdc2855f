extension ViTConfig {
  /// Model FLOPs of one CoDE training record: forward and backward (3x the forward, 2·m·n·k
  /// per GEMM, `forwardFLOPs`) of its six global views (`imageSize` px) and two local views
  /// (`localSize` px): `3 · (6 · F(grid² + 1) + 2 · F((L / patch)² + 1))`.
  public func trainingFLOPsPerRecord(localSize: Int) -> Double {
    let lg = localSize / patch
    return 3 * (6 * forwardFLOPs(tokens: grid * grid + 1) + 2 * forwardFLOPs(tokens: lg * lg + 1))
  }

  /// Model FLOPs not executed when `views` global views equal their base view and are run
  /// once: `views · 3 · F(grid² + 1)`.
  public func skippedViewFLOPs(views: Int) -> Double {
    Double(views) * 3 * forwardFLOPs(tokens: grid * grid + 1)
  }
}
