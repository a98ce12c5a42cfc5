import FashionCLF

/// How a photo becomes the network's 28x28 input.
public enum Preprocessing: String, CaseIterable, Sendable {
    /// The Fashion-MNIST conversion (Xiao, Rasul, Vollgraf 2017, section 2), for arbitrary photos.
    case fashionMNIST = "fashion-mnist"
    /// The seed script's: squash the whole photo to 28x28 (nearest neighbour, Keras' load_img default),
    /// grayscale, always invert.
    case naive
}

/// The 28x28 network input made from a photo, and what the conversion decided.
public struct PreparedImage: Sendable {
    /// 784 bytes, row-major, 0 = background (Fashion-MNIST's convention).
    public var pixels: [UInt8]
    /// The background colour estimated from the photo's border (RGB, 0-255).
    public var background: (r: Double, g: Double, b: Double)
    /// True when the background was light and intensities were negated.
    public var inverted: Bool
    /// The garment's bounding box in the photo: x0, y0 inclusive, x1, y1 exclusive.
    public var box: (x0: Int, y0: Int, x1: Int, y1: Int)

    /// The input mirrored left to right (test-time flip averaging: a garment's class does not depend on
    /// which way it faces).
    public var mirroredPixels: [UInt8] {
        pixels.withUnsafeBufferPointer { Classifier.mirrored($0, width: Preprocessor.side) }
    }
}

public enum Preprocessor {
    /// Fashion-MNIST's frame, measured on its 60,000 training images: the object's longest side spans all
    /// 28 pixels (98.3% of images), centred, and the brightest pixel is 255 (92% of images).
    public static let side = 28

    public static func prepare(_ photo: Photo, _ method: Preprocessing = .fashionMNIST) -> PreparedImage {
        switch method {
        case .fashionMNIST: return fashionMNIST(photo)
        case .naive: return naive(photo)
        }
    }

    /// Luminance of 8-bit sRGB values with ITU-R BT.601 weights (what PIL's "L" conversion uses).
    @inline(__always)
    static func luma(_ r: Double, _ g: Double, _ b: Double) -> Double { 0.299 * r + 0.587 * g + 0.114 * b }

    /// The working resolution's limit: the result is 28 pixels wide, so 1024 loses nothing, and a 12 MP
    /// phone photo is not turned into ~290 MB of Doubles.
    public static let workingSide = 1024

    /// RGB with alpha composited onto white (transparent areas of product cut-outs are background), reduced
    /// by an integer factor f (box average of f x f blocks) so the longer side is at most `workingSide`.
    /// Returns the pixels, their size, and f.
    public static func composite(_ photo: Photo) -> (rgb: [Double], w: Int, h: Int, factor: Int) {
        let f = max(1, (max(photo.width, photo.height) + workingSide - 1) / workingSide)
        let w = (photo.width + f - 1) / f, h = (photo.height + f - 1) / f
        var rgb = [Double](repeating: 0, count: w * h * 3)
        var weight = [Double](repeating: 0, count: w * h)
        for y in 0..<photo.height {
            for x in 0..<photo.width {
                let i = y * photo.width + x, o = (y / f) * w + x / f
                let a = Double(photo.rgba[4 * i + 3]) / 255
                for c in 0..<3 { rgb[3 * o + c] += a * Double(photo.rgba[4 * i + c]) + (1 - a) * 255 }
                weight[o] += 1
            }
        }
        for o in 0..<w * h { for c in 0..<3 { rgb[3 * o + c] /= weight[o] } }
        return (rgb, w, h, f)
    }

    static func median(_ values: inout [Double]) -> Double {
        values.sort()
        return values.isEmpty ? 0 : values[values.count / 2]
    }

    static func fashionMNIST(_ photo: Photo) -> PreparedImage {
        let (rgb, w, h, factor) = composite(photo)
        // 1. Background: the per-channel median of a band along the border (2% of the shorter side,
        //    at least 1 pixel), robust to a garment that touches the border in places.
        let band = max(1, min(w, h) / 50)
        var rs: [Double] = [], gs: [Double] = [], bs: [Double] = []
        for y in 0..<h {
            for x in 0..<w where y < band || y >= h - band || x < band || x >= w - band {
                let i = 3 * (y * w + x)
                rs.append(rgb[i]); gs.append(rgb[i + 1]); bs.append(rgb[i + 2])
            }
        }
        let bg = (r: median(&rs), g: median(&gs), b: median(&bs))
        // 2. Foreground: pixels whose colour differs from the background by more than a threshold chosen
        //    by Otsu's method on the histogram of those differences (the split that best separates
        //    background from object, with no parameter), and never less than the paper's 5% of the range.
        func difference(_ i: Int) -> Double {
            max(abs(rgb[i] - bg.r), abs(rgb[i + 1] - bg.g), abs(rgb[i + 2] - bg.b))
        }
        var histogram = [Double](repeating: 0, count: 256)
        for i in 0..<w * h { histogram[min(255, Int(difference(3 * i)))] += 1 }
        let threshold = max(0.05 * 255, Double(otsu(histogram)))
        // 3. Bounding box: the 0.5% to 99.5% quantiles of the foreground's coordinates on each axis, so
        //    stray pixels (noise, a shadow's tail, a texture speck) cannot stretch it.
        var rowCount = [Int](repeating: 0, count: h), colCount = [Int](repeating: 0, count: w)
        var total = 0
        for y in 0..<h {
            for x in 0..<w where difference(3 * (y * w + x)) > threshold {
                rowCount[y] += 1; colCount[x] += 1; total += 1
            }
        }
        var (x0, y0, x1, y1) = (0, 0, w, h)
        if total > 0 {
            let lo = Int(0.005 * Double(total)), hi = total - lo
            (y0, y1) = quantileRange(rowCount, lo, hi)
            (x0, x1) = quantileRange(colCount, lo, hi)
        }
        // 4. Intensity: 8-bit grayscale, negated when the background is light, relative to the
        //    background's own level so that background becomes 0 as in the dataset.
        let bgLuma = luma(bg.r, bg.g, bg.b)
        let inverted = bgLuma >= 128
        let cw = x1 - x0, ch = y1 - y0
        var crop = [Double](repeating: 0, count: cw * ch)
        for y in 0..<ch {
            for x in 0..<cw {
                let i = 3 * ((y0 + y) * w + x0 + x)
                let l = luma(rgb[i], rgb[i + 1], rgb[i + 2])
                crop[y * cw + x] = max(0, inverted ? bgLuma - l : l - bgLuma)
            }
        }
        // 5. Longest side to 28 pixels keeping the aspect ratio, by area averaging (no aliasing).
        let scale = Double(side) / Double(max(cw, ch))
        let tw = max(1, min(side, Int((Double(cw) * scale).rounded()))), th = max(1, min(side, Int((Double(ch) * scale).rounded())))
        var patch = areaResize(crop, cw, ch, tw, th)
        // 6. Sharpen (the paper's step after resizing): unsharp mask with a 3x3 box, amount 0.5.
        patch = sharpen(patch, tw, th, amount: 0.5)
        // 7. Contrast: brightest pixel to 255, as in the dataset.
        let peak = patch.max() ?? 0
        let gain = peak > 1e-6 ? 255 / peak : 0
        // 8. Centre on the 28x28 canvas.
        var pixels = [UInt8](repeating: 0, count: side * side)
        let ox = (side - tw) / 2, oy = (side - th) / 2
        for y in 0..<th {
            for x in 0..<tw {
                pixels[(oy + y) * side + ox + x] = UInt8(max(0, min(255, (patch[y * tw + x] * gain).rounded())))
            }
        }
        // The box in the photo's own pixels.
        return PreparedImage(pixels: pixels, background: bg, inverted: inverted,
                             box: (x0 * factor, y0 * factor, min(photo.width, x1 * factor), min(photo.height, y1 * factor)))
    }

    /// Otsu's threshold (1979): the histogram bin that maximises the between-class variance.
    static func otsu(_ histogram: [Double]) -> Int {
        let total = histogram.reduce(0, +)
        let sum = histogram.enumerated().reduce(0.0) { $0 + Double($1.offset) * $1.element }
        var weightB = 0.0, sumB = 0.0, best = 0.0, threshold = 0
        for t in 0..<histogram.count {
            weightB += histogram[t]
            let weightF = total - weightB
            if weightB == 0 { continue }
            if weightF == 0 { break }
            sumB += Double(t) * histogram[t]
            let meanB = sumB / weightB, meanF = (sum - sumB) / weightF
            let between = weightB * weightF * (meanB - meanF) * (meanB - meanF)
            if between > best { best = between; threshold = t }
        }
        return threshold
    }

    /// The index range [a, b) holding the lo-th to hi-th of the counted items, in index order.
    static func quantileRange(_ counts: [Int], _ lo: Int, _ hi: Int) -> (Int, Int) {
        var seen = 0, a = 0, b = counts.count
        var foundA = false
        for (i, c) in counts.enumerated() {
            if !foundA && seen + c > lo { a = i; foundA = true }
            seen += c
            if seen >= hi { b = i + 1; break }
        }
        return (a, max(b, a + 1))
    }

    /// Area-averaging resize of a single-channel image: each output pixel is the mean of the input area
    /// it covers, with fractional weights at the edges. Works for up- and downscaling.
    public static func areaResize(_ src: [Double], _ sw: Int, _ sh: Int, _ dw: Int, _ dh: Int) -> [Double] {
        // Separable: horizontal pass then vertical pass.
        func weights(_ n: Int, _ m: Int) -> [[(Int, Double)]] {
            let step = Double(n) / Double(m)
            return (0..<m).map { j in
                let a = Double(j) * step, b = Double(j + 1) * step
                var list: [(Int, Double)] = []
                var i = Int(a.rounded(.down))
                while Double(i) < b && i < n {
                    let overlap = min(b, Double(i + 1)) - max(a, Double(i))
                    if overlap > 0 { list.append((i, overlap / step)) }
                    i += 1
                }
                return list
            }
        }
        let wx = weights(sw, dw), wy = weights(sh, dh)
        var tmp = [Double](repeating: 0, count: dw * sh)
        for y in 0..<sh {
            for x in 0..<dw {
                var s = 0.0
                for (i, f) in wx[x] { s += f * src[y * sw + i] }
                tmp[y * dw + x] = s
            }
        }
        var out = [Double](repeating: 0, count: dw * dh)
        for y in 0..<dh {
            for x in 0..<dw {
                var s = 0.0
                for (i, f) in wy[y] { s += f * tmp[i * dw + x] }
                out[y * dw + x] = s
            }
        }
        return out
    }

    static func sharpen(_ p: [Double], _ w: Int, _ h: Int, amount: Double) -> [Double] {
        var out = p
        for y in 0..<h {
            for x in 0..<w {
                var s = 0.0, n = 0.0
                for dy in -1...1 {
                    for dx in -1...1 where (0..<h).contains(y + dy) && (0..<w).contains(x + dx) {
                        s += p[(y + dy) * w + x + dx]; n += 1
                    }
                }
                out[y * w + x] = max(0, p[y * w + x] + amount * (p[y * w + x] - s / n))
            }
        }
        return out
    }

    static func naive(_ photo: Photo) -> PreparedImage {
        let w = photo.width, h = photo.height
        var pixels = [UInt8](repeating: 0, count: side * side)
        for y in 0..<side {
            for x in 0..<side {
                // PIL's nearest neighbour: the source pixel under the output pixel's centre.
                let sx = min(w - 1, Int((Double(x) + 0.5) * Double(w) / Double(side)))
                let sy = min(h - 1, Int((Double(y) + 0.5) * Double(h) / Double(side)))
                let i = 4 * (sy * w + sx)
                let l = luma(Double(photo.rgba[i]), Double(photo.rgba[i + 1]), Double(photo.rgba[i + 2]))
                pixels[y * side + x] = UInt8(255 - Int(l.rounded()))
            }
        }
        return PreparedImage(pixels: pixels, background: (255, 255, 255), inverted: true, box: (0, 0, w, h))
    }
}
