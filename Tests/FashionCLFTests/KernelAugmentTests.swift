// Training-time augmentation (CKernels/augment.c): the identity is exactly pixel/255, the optimised kernel
// matches its naive twin, the draws are a pure function of (seed, epoch position), and each transform does
// what it says on images where that can be checked exactly or statistically.
import CKernels
@testable import FashionCLF
import Testing

/// Random uint8 images; `minimum` > 0 makes every pixel ink, so a moved or erased pixel is detectable.
private func randomImages(_ count: Int, h: Int, w: Int, seed: UInt64, minimum: UInt8 = 0) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    let span = UInt64(256 - Int(minimum))
    return (0..<count * h * w).map { _ in minimum + UInt8(rng.next() % span) }
}

/// Everything on, at the issue's ranges (erasing and noise at the usual sizes).
private func everythingOn() -> fclf_augment_config {
    var c = fclf_augment_identity()
    c.flip_p = 0.5; c.max_shift = 2; c.scale_min = 0.85; c.scale_max = 1
    c.erase_p = 0.5; c.erase_area_min = 0.02; c.erase_area_max = 0.2; c.erase_aspect_min = 0.3
    c.gamma_min = 0.6; c.gamma_max = 1.6; c.contrast_min = 0.6; c.contrast_max = 1
    c.blur_sigma_max = 0.8; c.noise_std = 0.05; c.peak_p = 0.5
    return c
}

/// Runs the kernel (or its twin) into a buffer with a guard tail, and checks that exactly n*h*w floats were written.
private func augment(_ src: [UInt8], _ index: [Int32], h: Int, w: Int, _ cfg: fclf_augment_config, seed: UInt64,
                     first: UInt64, ref: Bool = false, threads: Int = 1,
                     sourceLocation: SourceLocation = #_sourceLocation) -> [Float] {
    let count = index.count * h * w
    let guardTail = [Float](repeating: -12345, count: 64)
    var dst = [Float](repeating: .nan, count: count) + guardTail
    var c = cfg
    withThreads(threads) {
        if ref {
            fclf_augment_batch_ref(&dst, src, index, Int64(index.count), Int64(h), Int64(w), &c, seed, first)
        } else {
            fclf_augment_batch(&dst, src, index, Int64(index.count), Int64(h), Int64(w), &c, seed, first)
        }
    }
    #expect(Array(dst.suffix(guardTail.count)) == guardTail, "written past the end of dst", sourceLocation: sourceLocation)
    let out = Array(dst.prefix(count))
    #expect(out.allSatisfy { $0 >= 0 && $0 <= 1 }, "dst not fully written with values in [0, 1]", sourceLocation: sourceLocation)
    return out
}

@Suite("Augmentation kernel")
struct KernelAugmentTests {
    let shapes: [(h: Int, w: Int)] = [(28, 28), (5, 7), (1, 1), (6, 30)]

    @Test("all off: exactly Float(p) * (1/255), for every shape, 1 and 2 threads")
    func identity() {
        for (h, w) in shapes {
            let src = randomImages(10, h: h, w: w, seed: 1)
            let index: [Int32] = [3, 0, 9, 9, 1, 7, 2, 5, 4, 8, 6, 0]
            var expected: [Float] = []
            for i in index { for j in 0..<h * w { expected.append(Float(src[Int(i) * h * w + j]) * (1 / 255)) } }
            for threads in [1, 2] {
                let out = augment(src, index, h: h, w: w, fclf_augment_identity(), seed: 5, first: 100, threads: threads)
                #expect(out == expected, "\(h)x\(w), \(threads) threads")
            }
        }
        // A batch large enough for the parallel path (an evaluation-sized conversion).
        let src = randomImages(50, h: 28, w: 28, seed: 2)
        let index = (0..<400).map { Int32(($0 * 13) % 50) }
        let expected = index.flatMap { i in src[Int(i) * 784..<(Int(i) + 1) * 784].map { Float($0) * (1 / 255) } }
        for threads in [1, 2] {
            #expect(augment(src, index, h: 28, w: 28, fclf_augment_identity(), seed: 0, first: 0, threads: threads) == expected,
                    "400 images, \(threads) threads")
        }
    }

    @Test("everything on: the kernel matches its naive twin (double, per-pixel warp, 2-D blur sum)")
    func matchesReference() {
        var wide = everythingOn()
        wide.blur_sigma_max = 5; wide.contrast_max = 1.8; wide.max_shift = 4; wide.scale_min = 0.5; wide.scale_max = 1.3
        wide.noise_std = 0.3; wide.erase_p = 1; wide.erase_area_max = 0.9; wide.erase_aspect_min = 0.05
        for (name, cfg) in [("issue ranges", everythingOn()), ("wide ranges", wide)] {
            for (h, w) in shapes {
                let src = randomImages(6, h: h, w: w, seed: 2)
                let index = (0..<40).map { Int32($0 % 6) }
                let out = augment(src, index, h: h, w: w, cfg, seed: 11, first: 1234)
                let expected = augment(src, index, h: h, w: w, cfg, seed: 11, first: 1234, ref: true)
                // Float against double through powf, expf, the Box-Muller log/cos and a division by the peak.
                expectClose(out, expected, atol: 2e-5, rtol: 1e-4, "\(name) \(h)x\(w)")
            }
        }
    }

    @Test("1 and 2 threads bit-identical on a batch large enough to run in parallel")
    func threadCount() {
        let src = randomImages(16, h: 28, w: 28, seed: 3)
        let index = (0..<96).map { Int32(($0 * 7) % 16) }
        let one = augment(src, index, h: 28, w: 28, everythingOn(), seed: 9, first: 0, threads: 1)
        let two = augment(src, index, h: 28, w: 28, everythingOn(), seed: 9, first: 0, threads: 2)
        #expect(one == two)
    }

    @Test("same (seed, first) gives the same output; another seed or first gives another")
    func seeding() {
        let src = randomImages(8, h: 28, w: 28, seed: 4)
        let index = (0..<8).map { Int32($0) }
        let a = augment(src, index, h: 28, w: 28, everythingOn(), seed: 1, first: 0)
        #expect(a == augment(src, index, h: 28, w: 28, everythingOn(), seed: 1, first: 0))
        let otherSeed = augment(src, index, h: 28, w: 28, everythingOn(), seed: 2, first: 0)
        let otherFirst = augment(src, index, h: 28, w: 28, everythingOn(), seed: 1, first: 8)
        let size = 28 * 28
        for i in 0..<8 {
            let row = a[i * size..<(i + 1) * size]
            #expect(row != otherSeed[i * size..<(i + 1) * size], "image \(i): seed 1 and 2 agree")
            #expect(row != otherFirst[i * size..<(i + 1) * size], "image \(i): positions \(i) and \(i + 8) agree")
        }
    }

    @Test("an image's result does not depend on how the epoch is cut into batches")
    func batchSplit() {
        let src = randomImages(8, h: 28, w: 28, seed: 5)
        let index: [Int32] = [5, 2, 7, 0, 3, 3, 6, 1]
        let whole = augment(src, index, h: 28, w: 28, everythingOn(), seed: 77, first: 40)
        let head = augment(src, Array(index[0..<4]), h: 28, w: 28, everythingOn(), seed: 77, first: 40)
        let tail = augment(src, Array(index[4..<8]), h: 28, w: 28, everythingOn(), seed: 77, first: 44)
        #expect(whole == head + tail)
        // A single image at its position, as a batch of one.
        let sixth = augment(src, [index[6]], h: 28, w: 28, everythingOn(), seed: 77, first: 46)
        #expect(Array(whole[6 * 784..<7 * 784]) == sixth)
    }

    @Test("photometric_p: each image is either the geometric-only result or the full one, about p of them full; the twin agrees")
    func photometricFraction() {
        let (h, w, n) = (28, 28, 400)
        let src = randomImages(8, h: h, w: w, seed: 12)
        let index = (0..<n).map { Int32($0 % 8) }
        var half = everythingOn()
        half.photometric_p = 0.5
        var geometric = everythingOn()
        geometric.gamma_min = 1; geometric.gamma_max = 1; geometric.contrast_min = 1; geometric.contrast_max = 1
        geometric.blur_sigma_max = 0; geometric.noise_std = 0; geometric.peak_p = 0
        let mixed = augment(src, index, h: h, w: w, half, seed: 9, first: 3)
        let full = augment(src, index, h: h, w: w, everythingOn(), seed: 9, first: 3)
        let plain = augment(src, index, h: h, w: w, geometric, seed: 9, first: 3)
        var photometric = 0
        for i in 0..<n {
            let r = i * h * w..<(i + 1) * h * w
            let image = Array(mixed[r])
            if image == Array(full[r]) { photometric += 1 } else {
                #expect(image == Array(plain[r]), "image \(i) is neither the full nor the geometric-only result")
            }
        }
        // Binomial(400, 0.5): mean 200, sd 10.
        #expect(photometric > 160 && photometric < 240, "\(photometric) of \(n) images photometrically jittered")
        half.photometric_p = 0
        #expect(augment(src, index, h: h, w: w, half, seed: 9, first: 3) == plain)
        let ref = augment(src, Array(index.prefix(40)), h: h, w: w, { var c = everythingOn(); c.photometric_p = 0.5; return c }(),
                          seed: 9, first: 3, ref: true)
        expectClose(Array(mixed.prefix(40 * h * w)), ref, atol: 2e-5, rtol: 1e-4, "photometric_p 0.5")
    }

    @Test("flip_p = 1 alone gives the exact mirror image")
    func flip() {
        let (h, w) = (28, 28)
        let src = randomImages(4, h: h, w: w, seed: 6)
        var cfg = fclf_augment_identity()
        cfg.flip_p = 1
        let out = augment(src, [0, 1, 2, 3], h: h, w: w, cfg, seed: 1, first: 0)
        for i in 0..<4 { for y in 0..<h { for x in 0..<w {
            #expect(out[(i * h + y) * w + x] == Float(src[(i * h + y) * w + w - 1 - x]) * (1 / 255))
        } } }
        // Odd width: the middle column stays.
        let odd = randomImages(1, h: 3, w: 5, seed: 7)
        let mirrored = augment(odd, [0], h: 3, w: 5, cfg, seed: 1, first: 0)
        #expect(mirrored == (0..<15).map { Float(odd[($0 / 5) * 5 + 4 - $0 % 5]) * (1 / 255) })
    }

    @Test("an integer shift alone translates exactly, fills with 0, and reaches every extreme")
    func shift() {
        let (h, w, m, n) = (12, 10, 3, 200)
        let src = randomImages(1, h: h, w: w, seed: 8, minimum: 1)
        var cfg = fclf_augment_identity()
        cfg.max_shift = Int32(m)
        let out = augment(src, [Int32](repeating: 0, count: n), h: h, w: w, cfg, seed: 3, first: 0)
        func translated(_ dx: Int, _ dy: Int) -> [Float] {
            (0..<h * w).map { q in
                let sy = q / w - dy, sx = q % w - dx
                return sy >= 0 && sy < h && sx >= 0 && sx < w ? Float(src[sy * w + sx]) * (1 / 255) : 0
            }
        }
        var seen = Set<[Int]>()
        for i in 0..<n {
            let image = Array(out[i * h * w..<(i + 1) * h * w])
            let matches = (-m...m).flatMap { dy in (-m...m).map { dx in [dx, dy] } }.filter { translated($0[0], $0[1]) == image }
            #expect(matches.count == 1, "image \(i) is not a translated copy (\(matches.count) matches)")
            if let s = matches.first { seen.insert(s) }
        }
        for e in [-m, m] {
            #expect(seen.contains { $0[0] == e }, "no shift dx = \(e) in \(n) draws")
            #expect(seen.contains { $0[1] == e }, "no shift dy = \(e) in \(n) draws")
        }
        #expect(seen.count > (2 * m + 1) * (2 * m + 1) / 2, "only \(seen.count) distinct shifts in \(n) draws")
    }

    @Test("erase_p = 1 zeroes one rectangle whose area fraction is in range and leaves the rest alone")
    func erasing() {
        let (h, w, n) = (28, 28, 100)
        let (areaMin, areaMax): (Float, Float) = (0.05, 0.3)
        let src = randomImages(n, h: h, w: w, seed: 9, minimum: 1)
        var cfg = fclf_augment_identity()
        cfg.erase_p = 1; cfg.erase_area_min = areaMin; cfg.erase_area_max = areaMax; cfg.erase_aspect_min = 0.3
        let out = augment(src, (0..<n).map { Int32($0) }, h: h, w: w, cfg, seed: 4, first: 0)
        var fractions: [Double] = []
        for i in 0..<n {
            let zeros = (0..<h * w).filter { out[i * h * w + $0] == 0 }
            guard let first = zeros.first else { Issue.record("image \(i): nothing erased"); continue }
            let ys = zeros.map { $0 / w }, xs = zeros.map { $0 % w }
            let (y0, y1, x0, x1) = (ys.min()!, ys.max()!, xs.min()!, xs.max()!)
            let eh = y1 - y0 + 1, ew = x1 - x0 + 1
            #expect(zeros.count == eh * ew, "image \(i): the zeros (from \(first)) are not a filled rectangle")
            for q in 0..<h * w where !(q / w >= y0 && q / w <= y1 && q % w >= x0 && q % w <= x1) {
                #expect(out[i * h * w + q] == Float(src[i * h * w + q]) * (1 / 255), "image \(i): pixel \(q) changed outside the rectangle")
            }
            // The width is rounded to whole pixels after the height: up to half a pixel per row.
            let slack = Double(eh) / 2 / Double(h * w)
            let fraction = Double(eh * ew) / Double(h * w)
            fractions.append(fraction)
            #expect(fraction >= Double(areaMin) - slack && fraction <= Double(areaMax) + slack, "image \(i): area fraction \(fraction)")
            let aspect = Double(eh) / Double(ew)
            #expect(aspect > 0.3 / 1.5 && aspect < 1.5 / 0.3, "image \(i): aspect \(aspect)")
        }
        let mean = fractions.reduce(0, +) / Double(max(1, fractions.count))
        #expect(abs(mean - Double(areaMin + areaMax) / 2) < 0.03, "mean area fraction \(mean)")
        cfg.erase_p = 0
        let none = augment(src, (0..<n).map { Int32($0) }, h: h, w: w, cfg, seed: 4, first: 0)
        #expect(!none.contains(0), "erase_p = 0 erased something")
    }

    @Test("statistics: flip frequency near flip_p; contrast < 1 lowers the mean by its factor; noise has its std")
    func statistics() {
        let (h, w, n) = (28, 28, 2000)
        // An image that differs from its mirror: ink on the left half only.
        let src = (0..<h * w).map { UInt8($0 % w < w / 2 ? 50 + ($0 % 200) : 0) }
        var cfg = fclf_augment_identity()
        cfg.flip_p = 0.3
        let index = [Int32](repeating: 0, count: n)
        let flipped = augment(src, index, h: h, w: w, cfg, seed: 12, first: 0)
        let count = (0..<n).filter { flipped[$0 * h * w] == 0 }.count  // top-left pixel is ink unless flipped
        let p = Double(count) / Double(n), sd = (0.3 * 0.7 / Double(n)).squareRoot()
        #expect(abs(p - 0.3) < 4 * sd, "flip frequency \(p) for flip_p 0.3")

        cfg = fclf_augment_identity()
        cfg.contrast_min = 0.5; cfg.contrast_max = 0.7
        let dimmed = augment(src, [Int32](repeating: 0, count: 500), h: h, w: w, cfg, seed: 13, first: 0)
        let plain = augment(src, [0], h: h, w: w, fclf_augment_identity(), seed: 13, first: 0)
        let ratio = (dimmed.reduce(0, +) / 500) / plain.reduce(0, +)
        #expect(ratio > 0.58 && ratio < 0.62, "contrast in [0.5, 0.7] scaled the mean by \(ratio)")

        // Peak normalisation undoes the dimming: the brightest pixel is exactly 1.
        cfg.peak_p = 1
        let renormalised = augment(src, [0, 0, 0], h: h, w: w, cfg, seed: 13, first: 0)
        for i in 0..<3 { #expect(renormalised[i * h * w..<(i + 1) * h * w].max() == 1) }

        // Noise on mid-grey (far from the clamp): mean kept, std as asked.
        cfg = fclf_augment_identity()
        cfg.noise_std = 0.1
        let grey = [UInt8](repeating: 128, count: h * w)
        let noisy = augment(grey, [0, 0, 0, 0, 0, 0, 0, 0], h: h, w: w, cfg, seed: 14, first: 0).map { Double($0) }
        let mean = noisy.reduce(0, +) / Double(noisy.count)
        let std = (noisy.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(noisy.count)).squareRoot()
        #expect(abs(mean - 128.0 / 255) < 0.005 && abs(std - 0.1) < 0.005, "noise mean \(mean), std \(std)")
    }

    @Test("blur keeps an interior dot's mass and symmetry; scale < 1 shrinks about the centre; gamma is a power")
    func blurScaleGamma() {
        let (h, w) = (15, 15)
        var dot = [UInt8](repeating: 0, count: h * w)
        dot[7 * w + 7] = 255
        var cfg = fclf_augment_identity()
        cfg.blur_sigma_max = 1.5
        let blurred = augment(dot, [0, 0, 0, 0], h: h, w: w, cfg, seed: 15, first: 0)
        for i in 0..<4 {
            let img = Array(blurred[i * h * w..<(i + 1) * h * w])
            #expect(abs(img.reduce(0, +) - 1) < 1e-5, "image \(i): mass \(img.reduce(0, +))")
            for y in 0..<h { for x in 0..<w {
                // Mirrored pixels sum the same terms in another order: equal up to rounding.
                let v = img[y * w + x], mirror = img[y * w + (w - 1 - x)], transposed = img[x * w + y]
                #expect(abs(v - mirror) <= 1e-7 && abs(v - transposed) <= 1e-7, "image \(i): not symmetric at \(x),\(y)")
            } }
        }

        let full = [UInt8](repeating: 255, count: 28 * 28)
        cfg = fclf_augment_identity()
        cfg.scale_min = 0.5; cfg.scale_max = 0.5
        let small = augment(full, [0], h: 28, w: 28, cfg, seed: 1, first: 0)
        #expect(small[0] == 0 && small[27] == 0 && small[27 * 28] == 0 && small[28 * 28 - 1] == 0, "corners not background")
        #expect(small[14 * 28 + 14] == 1 && small[13 * 28 + 13] == 1, "centre not ink")
        let coverage = small.reduce(0, +) / Float(28 * 28)
        #expect(abs(coverage - 0.25) < 0.03, "a half-scale square covers \(coverage) of the image")

        cfg = fclf_augment_identity()
        cfg.gamma_min = 2; cfg.gamma_max = 2
        let src = randomImages(1, h: 28, w: 28, seed: 16)
        let squared = augment(src, [0], h: 28, w: 28, cfg, seed: 1, first: 0)
        expectClose(squared, src.map { let v = Float($0) / 255; return v * v }, atol: 1e-6, rtol: 1e-6, "gamma 2")
    }
}
