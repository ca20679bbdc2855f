import Foundation
import Randomness
import Imaging

/// Record-level content: palette, scene type, caption.
struct Theme {
  var palette: [(Float, Float, Float)]
  var scene: Int  // 0 landscape, 1 object, 2 pattern
  var caption: String

  init(seed: UInt64, index: Int) {
    var rng = CounterRNG(seed: seed, epoch: SyntheticD3.epochTag, record: index, stream: SyntheticD3.themeStream)
    let hue = rng.uniform()
    palette = (0..<5).map { i in
      let hh = (hue + rng.uniform(-0.12, 0.12) + (i == 4 ? 0.5 : 0)).truncatingRemainder(dividingBy: 1) + 1
      return Theme.hsv(hh.truncatingRemainder(dividingBy: 1), rng.uniform(0.15, 0.85), rng.uniform(0.25, 0.95))
    }
    scene = rng.int(below: 3)
    let colours = ["red", "blue", "green", "golden", "grey", "white", "dark", "orange", "purple", "brown"]
    let things = ["house", "car", "dog", "vase", "chair", "mountain", "boat", "tree", "lamp", "bicycle", "cake", "sofa"]
    let places = ["on a beach", "in a kitchen", "near a lake", "in the city", "in a garden", "on a white background",
                  "at sunset", "in the snow", "in a forest", "on a table"]
    let styles = ["photo of", "picture of", "close-up of", "stock image of", "vintage photo of"]
    caption = "\(styles[rng.int(below: styles.count)]) a \(colours[rng.int(below: colours.count)]) "
      + "\(things[rng.int(below: things.count)]) \(places[rng.int(below: places.count)])"
  }

  static func hsv(_ h: Double, _ s: Double, _ v: Double) -> (Float, Float, Float) {
    let i = Int(h * 6) % 6, f = h * 6 - floor(h * 6)
    let p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s)
    let (r, g, b): (Double, Double, Double)
    switch i {
    case 0: (r, g, b) = (v, t, p)
    case 1: (r, g, b) = (q, v, p)
    case 2: (r, g, b) = (p, v, t)
    case 3: (r, g, b) = (p, q, v)
    case 4: (r, g, b) = (t, p, v)
    default: (r, g, b) = (v, p, q)
    }
    return (Float(r), Float(g), Float(b))
  }
}
