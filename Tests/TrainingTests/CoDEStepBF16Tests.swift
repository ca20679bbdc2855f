import Kernels
import SafeTensors
import Training
import TestSupport
import ViT
import XCTest

/// The step under `optim.precision: bf16` (the Linear layers' GEMMs on bf16 operands with fp32
/// sums): against the fp32 PyTorch + timm step within bf16 tolerances, bit-identical on 1 and 2
/// threads, and a restored step equal to the uninterrupted one.
final class CoDEStepBF16Tests: CoDEStepParityTests {
  override func setUpWithError() throws {
    try super.setUpWithError()
    if let why = GEMMBackend.bf16Unavailable { throw XCTSkip("no bf16 GEMMs here: \(why)") }
    GEMMBackend.precision = .bf16
  }

  override func tearDown() {
    GEMMBackend.precision = .fp32
    super.tearDown()
  }

  /// bf16 keeps 8 significant bits (relative rounding 2^-9 per operand): the loss within 0.5 %,
  /// embeddings within 0.02, the whole gradient within 3 % and each tensor's within 15 % (relative
  /// Frobenius; the biases' and LayerNorms' gradients are sums of `dy` with much cancellation at
  /// this random initialisation; measured with the attention products in bf16 too: 0.97 % and
  /// 10.5 % at worst) of the fp32 PyTorch step.
  override func testStepMatchesPyTorch() throws {
    let (step, r) = try runStep(threads: 2)
    let ref = try SafeTensorsFile(path: fixturePath("Engine", "step_small.safetensors"))
    let d = 32, b = 3
    let loss = Double(try ref.floats("loss")[0])
    XCTAssertEqual(r.loss, loss, accuracy: 5e-3 * abs(loss), "loss")
    for (i, n) in CoDEStep.globalViewNames.enumerated() {
      let e = Array(UnsafeBufferPointer(start: step.globalEmbeddings! + i * b * d, count: b * d))
      assertClose(e, try ref.floats("embedding.\(n)"), atol: 2e-2, "embedding.\(n)")
    }
    var all: [Float] = [], allRef: [Float] = [], worst = 0.0
    for e in step.model.layout.entries {
      let g = Array(UnsafeBufferPointer(start: step.model.grads + e.offset, count: e.count))
      let rg = try ref.floats("grad.\(e.name)")
      let rel = relFrobenius(g, rg)
      worst = max(worst, rel)
      all += g
      allRef += rg
      XCTAssertLessThan(rel, 0.15, "grad.\(e.name)")
    }
    print("bf16 step against fp32 PyTorch: whole gradient \(relFrobenius(all, allRef)), worst tensor \(worst)")
    XCTAssertLessThan(relFrobenius(all, allRef), 0.03, "the whole gradient")
    XCTAssertGreaterThan(worst, 1e-6, "the bf16 path ran (gradients differ from fp32 at all)")
  }
}
