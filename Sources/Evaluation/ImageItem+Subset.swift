import Foundation

extension Array where Element == ImageItem {
  /// At most `cap` of these images (0: all), shared between the labels as evenly as
  /// their counts allow: labels by ascending count each take min(count, remaining /
  /// labels left) (water-filling); what integer division leaves goes one by one to the
  /// labels with images to spare, in label order. Each label keeps its first images and
  /// the result keeps the original order, so for a test-layout folder the subset is the
  /// first n files (by name) of each class folder.
  public func balancedSubset(cap: Int) -> [ImageItem] {
    guard cap > 0, count > cap else { return self }
    var counts: [Int64: Int] = [:]
    for it in self { counts[it.label, default: 0] += 1 }
    var take: [Int64: Int] = [:]
    var remaining = cap
    let byCount = counts.keys.sorted { (counts[$0]!, $0) < (counts[$1]!, $1) }
    for (i, l) in byCount.enumerated() {
      let t = Swift.min(counts[l]!, remaining / (byCount.count - i))
      take[l] = t
      remaining -= t
    }
    for l in counts.keys.sorted() where remaining > 0 && take[l]! < counts[l]! {
      take[l]! += 1
      remaining -= 1
    }
    var seen: [Int64: Int] = [:]
    return filter { it in
      seen[it.label, default: 0] += 1
      return seen[it.label]! <= take[it.label]!
    }
  }
}
