import Foundation

/// Inline SVG charts for the HTML report (no scripts, no external resources).
enum SVG {
  /// Escapes text for HTML/SVG content and attribute values.
  static func esc(_ s: String) -> String {
    var o = ""
    for c in s {
      switch c {
      case "&": o += "&amp;"
      case "<": o += "&lt;"
      case ">": o += "&gt;"
      case "\"": o += "&quot;"
      case "'": o += "&#39;"
      default: o.append(c)
      }
    }
    return o
  }

  static func f(_ v: Double) -> String { String(format: "%.1f", v) }

  /// About `count` round tick values (steps of 1, 2 or 5 x 10^k) covering [lo, hi].
  static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
    guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
    let raw = (hi - lo) / Double(max(count, 1))
    let mag = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
    var out: [Double] = []
    var k = (lo / step).rounded(.up)
    while k * step <= hi + step * 1e-9 {
      // k * step, cleaned of binary rounding (3 * 0.2 -> 0.6).
      out.append(Double(String(format: "%.12g", k * step)) ?? k * step)
      k += 1
    }
    return out
  }

  /// Short tick label: 1500 -> "1.5k", 0.0015 -> "0.0015", 2e-6 -> "2e-06".
  static func label(_ v: Double) -> String {
    if v == 0 { return "0" }
    let a = abs(v)
    if a >= 1_000_000 { return trim(String(format: "%.2f", v / 1_000_000)) + "M" }
    if a >= 10_000 || (a >= 1000 && v.truncatingRemainder(dividingBy: 100) == 0) {
      return trim(String(format: "%.2f", v / 1000)) + "k"
    }
    if a < 1e-4 { return String(format: "%.0e", v) }
    return String(format: "%g", (v * 1e6).rounded() / 1e6)
  }

  static func trim(_ s: String) -> String {
    guard s.contains(".") else { return s }
    var t = s
    while t.hasSuffix("0") { t.removeLast() }
    if t.hasSuffix(".") { t.removeLast() }
    return t
  }

  /// Readable number with a few significant digits.
  static func number(_ v: Double, digits: Int = 3) -> String {
    if v == 0 { return "0" }
    if abs(v) >= 1000 { return groupThousands(Int(v.rounded())) }
    if abs(v) < 1e-3 { return String(format: "%.\(max(digits - 1, 0))e", v) }
    let decimals = max(0, digits - 1 - Int(floor(log10(abs(v)))))
    return String(format: "%.\(decimals)f", v)
  }

  static func groupThousands(_ n: Int) -> String {
    let s = String(abs(n))
    var out = ""
    for (i, c) in s.enumerated() {
      if i > 0 && (s.count - i) % 3 == 0 { out += "," }
      out.append(c)
    }
    return (n < 0 ? "-" : "") + out
  }

  /// One line series: raw points, drawn as a light min-max band (many points) or a
  /// faint line, with an exponentially smoothed line on top when `smooth`.
  struct Series {
    var name: String
    var color: String
    var points: [(x: Double, y: Double)]
    var smooth: Bool = true
    /// Drawn dashed and thin (a reference line such as the collapse value).
    var dashed: Bool = false
  }

  /// Debiased exponential moving average with half-life `n / 60` points (at least 1).
  static func ema(_ ys: [Double]) -> [Double] {
    let half = max(1.0, Double(ys.count) / 60)
    let beta = pow(0.5, 1 / half)
    var m = 0.0, w = 0.0
    return ys.map { y in
      m = beta * m + (1 - beta) * y
      w = beta * w + (1 - beta)
      return m / w
    }
  }

  /// A line chart of `series` over a shared x axis, sized by its viewBox (scales to the card).
  static func lineChart(_ series: [Series], width: Double = 560, height: Double = 250,
                        xLabel: String = "step", yLabel: String = "", yFloorZero: Bool = false) -> String {
    let all = series.flatMap { $0.points }
    guard !all.isEmpty else { return "" }
    let ml = 62.0, mr = 14.0, mt = 12.0, mb = 38.0
    let pw = width - ml - mr, ph = height - mt - mb
    var x0 = all.map(\.x).min()!, x1 = all.map(\.x).max()!
    if x1 == x0 { x0 -= 1; x1 += 1 }
    var y0 = all.map(\.y).min()!, y1 = all.map(\.y).max()!
    if yFloorZero { y0 = min(0, y0) }
    if y1 == y0 { y0 -= abs(y0) * 0.1 + 1e-9; y1 += abs(y1) * 0.1 + 1e-9 }
    let pad = (y1 - y0) * 0.05
    if !(yFloorZero && y0 == 0) { y0 -= pad }
    y1 += pad
    func sx(_ x: Double) -> Double { ml + (x - x0) / (x1 - x0) * pw }
    func sy(_ y: Double) -> Double { mt + ph - (y - y0) / (y1 - y0) * ph }
    var s = "<svg viewBox=\"0 0 \(Int(width)) \(Int(height))\" class=\"chart\" role=\"img\">"
    // Grid and axes.
    for t in ticks(y0, y1) {
      let y = sy(t)
      s += "<line x1=\"\(f(ml))\" x2=\"\(f(ml + pw))\" y1=\"\(f(y))\" y2=\"\(f(y))\" class=\"grid\"/>"
      s += "<text x=\"\(f(ml - 8))\" y=\"\(f(y + 4))\" class=\"tick\" text-anchor=\"end\">\(label(t))</text>"
    }
    for t in ticks(x0, x1, count: 6) {
      let x = sx(t)
      s += "<line x1=\"\(f(x))\" x2=\"\(f(x))\" y1=\"\(f(mt + ph))\" y2=\"\(f(mt + ph + 5))\" class=\"axis\"/>"
      s += "<text x=\"\(f(x))\" y=\"\(f(mt + ph + 19))\" class=\"tick\" text-anchor=\"middle\">\(label(t))</text>"
    }
    s += "<line x1=\"\(f(ml))\" x2=\"\(f(ml + pw))\" y1=\"\(f(mt + ph))\" y2=\"\(f(mt + ph))\" class=\"axis\"/>"
    s += "<text x=\"\(f(ml + pw))\" y=\"\(f(height - 3))\" class=\"axislabel\" text-anchor=\"end\">\(esc(xLabel))</text>"
    if !yLabel.isEmpty {
      s += "<text x=\"14\" y=\"\(f(mt + ph / 2))\" class=\"axislabel\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(f(mt + ph / 2)))\">\(esc(yLabel))</text>"
    }
    s += "<g>"
    for ser in series where !ser.points.isEmpty {
      let pts = ser.points
      let buckets = Int(pw / 1.5)
      if pts.count == 1 {
        s += "<circle cx=\"\(f(sx(pts[0].x)))\" cy=\"\(f(sy(pts[0].y)))\" r=\"3.5\" fill=\"\(ser.color)\"/>"
        continue
      }
      if ser.smooth && pts.count > buckets {
        // Min-max band per pixel column.
        var upper: [(Double, Double)] = [], lower: [(Double, Double)] = []
        let per = Double(pts.count) / Double(buckets)
        for b in 0..<buckets {
          let lo = Int(Double(b) * per), hi = max(lo + 1, Int(Double(b + 1) * per))
          let slice = pts[lo..<min(hi, pts.count)]
          let xm = slice.map(\.x).reduce(0, +) / Double(slice.count)
          upper.append((sx(xm), sy(slice.map(\.y).max()!)))
          lower.append((sx(xm), sy(slice.map(\.y).min()!)))
        }
        let poly = (upper + lower.reversed()).map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ")
        s += "<polygon points=\"\(poly)\" fill=\"\(ser.color)\" opacity=\"0.16\"/>"
      } else if ser.smooth && pts.count > 40 {
        s += "<polyline points=\"\(polyline(pts, sx, sy))\" fill=\"none\" stroke=\"\(ser.color)\" stroke-width=\"1\" opacity=\"0.3\"/>"
      }
      var line = pts
      if ser.smooth && pts.count > 40 {
        let sm = ema(pts.map(\.y))
        line = zip(pts, sm).map { ($0.x, $1) }
      }
      // Thin the drawn line to about one vertex per pixel column.
      if line.count > buckets * 2 {
        let stride = Double(line.count) / Double(buckets * 2)
        line = (0..<(buckets * 2)).map { line[Int(Double($0) * stride)] } + [line.last!]
      }
      let stroke = ser.dashed ? "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"" : "stroke-width=\"2\""
      s += "<polyline points=\"\(polyline(line, sx, sy))\" fill=\"none\" stroke=\"\(ser.color)\" \(stroke) stroke-linejoin=\"round\"><title>\(esc(ser.name))</title></polyline>"
    }
    s += "</g></svg>"
    return s
  }

  static func polyline(_ pts: [(x: Double, y: Double)], _ sx: (Double) -> Double, _ sy: (Double) -> Double) -> String {
    pts.map { "\(f(sx($0.x))),\(f(sy($0.y)))" }.joined(separator: " ")
  }

  /// Grouped vertical bars: one group per label, one bar per series; values in [0, 1]
  /// shown as percentages, with a dashed line at 50% (chance).
  static func groupedBars(groups: [String], series: [(name: String, color: String, values: [Double?])],
                          width: Double = 560, height: Double = 280) -> String {
    let ml = 46.0, mr = 10.0, mt = 16.0, mb = 34.0
    let pw = width - ml - mr, ph = height - mt - mb
    func sy(_ v: Double) -> Double { mt + ph - v * ph }
    var s = "<svg viewBox=\"0 0 \(Int(width)) \(Int(height))\" class=\"chart\" role=\"img\">"
    for t in stride(from: 0.0, through: 1.0001, by: 0.25) {
      s += "<line x1=\"\(f(ml))\" x2=\"\(f(ml + pw))\" y1=\"\(f(sy(t)))\" y2=\"\(f(sy(t)))\" class=\"grid\"/>"
      s += "<text x=\"\(f(ml - 8))\" y=\"\(f(sy(t) + 4))\" class=\"tick\" text-anchor=\"end\">\(Int(t * 100))%</text>"
    }
    let gw = pw / Double(max(groups.count, 1))
    let inner = gw * 0.78
    let bw = inner / Double(max(series.count, 1))
    for (gi, g) in groups.enumerated() {
      let gx = ml + Double(gi) * gw + (gw - inner) / 2
      if g == "all" && gi > 0 {
        let sep = ml + Double(gi) * gw
        s += "<line x1=\"\(f(sep))\" x2=\"\(f(sep))\" y1=\"\(f(mt))\" y2=\"\(f(mt + ph))\" class=\"sep\"/>"
      }
      for (si, ser) in series.enumerated() {
        guard si < ser.values.count, let v = ser.values[gi], v.isFinite else { continue }
        let x = gx + Double(si) * bw + 1.5
        let h = max(v, 0) * ph
        s += "<rect x=\"\(f(x))\" y=\"\(f(sy(v)))\" width=\"\(f(bw - 3))\" height=\"\(f(h))\" rx=\"2\" fill=\"\(ser.color)\">"
        s += "<title>\(esc(ser.name)) \(esc(g)): \(String(format: "%.1f", 100 * v))%</title></rect>"
        if bw >= 22 {
          s += "<text x=\"\(f(x + (bw - 3) / 2))\" y=\"\(f(sy(v) - 4))\" class=\"barval\" text-anchor=\"middle\">\(String(format: "%.0f", 100 * v))</text>"
        }
      }
      s += "<text x=\"\(f(ml + Double(gi) * gw + gw / 2))\" y=\"\(f(mt + ph + 20))\" class=\"group\" text-anchor=\"middle\">\(esc(g))</text>"
    }
    s += "<line x1=\"\(f(ml))\" x2=\"\(f(ml + pw))\" y1=\"\(f(sy(0.5)))\" y2=\"\(f(sy(0.5)))\" class=\"chance\"/>"
    s += "<line x1=\"\(f(ml))\" x2=\"\(f(ml + pw))\" y1=\"\(f(sy(0)))\" y2=\"\(f(sy(0)))\" class=\"axis\"/>"
    return s + "</svg>"
  }

  /// A scatter plot of 2-D points coloured by class, equal scale on both axes.
  static func scatter(points: [(x: Double, y: Double, cls: Int)], colors: [String],
                      xLabel: String, yLabel: String, width: Double = 560, height: Double = 440) -> String {
    guard !points.isEmpty else { return "" }
    let ml = 40.0, mr = 12.0, mt = 12.0, mb = 34.0
    let pw = width - ml - mr, ph = height - mt - mb
    let xs = points.map(\.x), ys = points.map(\.y)
    let cx = (xs.min()! + xs.max()!) / 2, cy = (ys.min()! + ys.max()!) / 2
    let span = max((xs.max()! - xs.min()!) / pw, (ys.max()! - ys.min()!) / ph, 1e-12) * 1.06
    func sx(_ x: Double) -> Double { ml + pw / 2 + (x - cx) / span }
    func sy(_ y: Double) -> Double { mt + ph / 2 - (y - cy) / span }
    var s = "<svg viewBox=\"0 0 \(Int(width)) \(Int(height))\" class=\"chart\" role=\"img\">"
    s += "<rect x=\"\(f(ml))\" y=\"\(f(mt))\" width=\"\(f(pw))\" height=\"\(f(ph))\" class=\"plotbg\"/>"
    let xt = ticks(cx - pw / 2 * span, cx + pw / 2 * span, count: 6)
    let yt = ticks(cy - ph / 2 * span, cy + ph / 2 * span, count: 5)
    for t in xt {
      s += "<line x1=\"\(f(sx(t)))\" x2=\"\(f(sx(t)))\" y1=\"\(f(mt))\" y2=\"\(f(mt + ph))\" class=\"grid\"/>"
      s += "<text x=\"\(f(sx(t)))\" y=\"\(f(mt + ph + 16))\" class=\"tick\" text-anchor=\"middle\">\(label(t))</text>"
    }
    for t in yt {
      s += "<line x1=\"\(f(ml))\" x2=\"\(f(ml + pw))\" y1=\"\(f(sy(t)))\" y2=\"\(f(sy(t)))\" class=\"grid\"/>"
      s += "<text x=\"\(f(ml - 6))\" y=\"\(f(sy(t) + 4))\" class=\"tick\" text-anchor=\"end\">\(label(t))</text>"
    }
    s += "<text x=\"\(f(ml + pw))\" y=\"\(f(height - 3))\" class=\"axislabel\" text-anchor=\"end\">\(esc(xLabel))</text>"
    s += "<text x=\"12\" y=\"\(f(mt + ph / 2))\" class=\"axislabel\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(f(mt + ph / 2)))\">\(esc(yLabel))</text>"
    for p in points {
      let c = colors[p.cls % colors.count]
      s += "<circle cx=\"\(f(sx(p.x)))\" cy=\"\(f(sy(p.y)))\" r=\"2.6\" fill=\"\(c)\" fill-opacity=\"0.62\"/>"
    }
    return s + "</svg>"
  }
}
