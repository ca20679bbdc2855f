import Foundation
import Imaging

/// One loader thread's view maker: writes a record's eight views into its batch slot
/// (6 global views at S x S, then 2 local views at L x L; planar 3 x H x W each), and
/// which of its augmented views T left unchanged.
final class SlotViewMaker {
  let maker: CoDEViewMaker
  init(spec: ViewSpec) { maker = CoDEViewMaker(spec: spec) }

  func make(real: RGBImage, fake: RGBImage, seed: UInt64, epoch: Int, record: Int, batch: ViewBatch, slot: Int) {
    maker.make(real: real, fake: fake, seed: seed, epoch: epoch, record: record, into: batch, slot: slot)
  }
}
