// The Winograd F(2x2, 3x3) convolution + pooling (CKernels/conv/winograd.c) against the naive convolution and
// pooling, and its bits across batches, thread counts and the second core's help; every variant the CPU has.
import CKernels
import Testing

/// The Winograd kernel with variant `isa` on shape s: pooled outputs and (when asked) winners, weights packed for
/// that variant (none where it has no such kernel: the two passes run).
private func winograd(_ isa: Int32, _ s: fclf_conv2d_shape, x: [Float], w: [Float], b: [Float], relu: Int32,
                      winners: Bool) -> (y: [Float], argmax: [Int32]) {
    let pooled = Int(s.n * s.oc * (s.oh / 2) * (s.ow / 2))
    var wp = [Float](repeating: .nan, count: Int(fclf_conv2d_winograd_pool_packed_size_isa(isa, s)))
    if !wp.isEmpty { fclf_conv2d_winograd_pool_pack_weights_isa(isa, &wp, w, s) }
    var y = [Float](repeating: .nan, count: pooled), argmax = [Int32](repeating: -1, count: pooled)
    var work = [Float](repeating: .nan, count: Int(fclf_conv2d_winograd_pool_work_size(s)))
    wp.withUnsafeBufferPointer { wpb in
        argmax.withUnsafeMutableBufferPointer { a in
            fclf_conv2d_winograd_pool_isa(isa, &y, winners ? a.baseAddress : nil, &work, x, w, wpb.isEmpty ? nil : wpb.baseAddress, b, relu, s)
        }
    }
    return (y, argmax)
}

@Suite("Winograd convolution + pooling")
struct KernelWinogradTests {
    @Test("the shapes it takes: 3x3 'valid', two or more input channels, pooled rows of at most 8 tiles, 11-48 tiles that save 1.5x the multiply-adds")
    func supportedShapes() {
        func supported(_ c: Int64, _ h: Int64, _ w: Int64, k: Int64 = 3, same: Int32 = 0) -> Bool {
            fclf_conv2d_winograd_pool_supported(fclf_conv2d_make_shape(1, c, h, w, 64, k, k, same)) != 0
        }
        #expect(supported(32, 13, 13))  // the seed CNN's conv2: 5x5 tiles
        #expect(supported(32, 14, 14))  // cnn3-bn's: 6x6
        #expect(supported(64, 10, 10))  // wide-bn's last: 4x4
        #expect(supported(8, 8, 10))    // 3x4: 12 tiles in one vector
        #expect(!supported(32, 13, 13, same: 1))
        #expect(!supported(32, 13, 13, k: 2))
        #expect(!supported(32, 8, 8))    // 3x3 tiles in one vector: too few to pay
        #expect(!supported(32, 20, 20))  // 9x9 tiles: rows longer than 8, 81 tiles
        #expect(!supported(32, 12, 20))  // 5x9: a row of 9 tiles
        #expect(!supported(1, 13, 13))   // one input channel: the direct kernels'
        // The work size answers for any shape, supported or not.
        #expect(fclf_conv2d_winograd_pool_work_size(fclf_conv2d_make_shape(1, 1, 3, 3, 4, 3, 3, 0)) == 4)
        #expect(fclf_conv2d_winograd_pool_work_size(fclf_conv2d_make_shape(1, 2, 40, 40, 4, 3, 3, 0)) == 4 * 38 * 38)
    }

    @Test("it matches the naive convolution + ReLU + pooling to rounding, with its winners, every image of a batch with the bits of the image alone, 1 and 2 threads, every ISA",
          arguments: kernelISAs)
    func matchesNaive(_ variant: KernelISA) {
        let isa = variant.raw
        // (n, c, h, w, oc): conv2's shape (25 tiles in 2 vectors); partial blocks of output channels (13: 8 + 5 on
        // AVX-512, 6 + 6 + 1 on AVX2) and 36 tiles in 3 vectors with an odd plane (13 output rows: the last dropped
        // by the pooling); 16 tiles (one whole vector) on two input channels; a 4x7 plane of tiles with 20 channels.
        for (n, c, h, w, oc) in [(3, 32, 13, 13, 64), (2, 3, 15, 14, 13), (2, 2, 10, 10, 9), (3, 5, 11, 17, 20)] {
            let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), 3, 3, 0)
            #expect(fclf_conv2d_winograd_pool_supported(s) != 0)
            // AVX-512 and AVX2 have the kernel; scalar runs the two passes, and must still agree.
            #expect((fclf_conv2d_winograd_pool_packed_size_isa(isa, s) > 0) == (isa != Int32(FCLF_ISA_SCALAR.rawValue)))
            let perImage = oc * Int(s.oh / 2) * Int(s.ow / 2)
            let x = randomArray(n * c * h * w, seed: 90), wt = randomArray(oc * c * 9, seed: 91), b = randomArray(oc, seed: 92)
            for relu: Int32 in [0, 1] {
                var expected = [Float](repeating: 0, count: n * perImage), winners = [Int32](repeating: -1, count: n * perImage)
                fclf_conv2d_pool_forward_ref(&expected, &winners, x, wt, b, relu, s)
                var results: [[Float]] = []
                for threads in [1, 2] { for training in [false, true] {
                    let r = withThreads(threads) { winograd(isa, s, x: x, w: wt, b: b, relu: relu, winners: training) }
                    let tag = "\(variant.testDescription) n\(n) c\(c) \(h)x\(w) oc\(oc) relu \(relu), \(threads) threads\(training ? ", winners" : "")"
                    // Each output sums 9c products of values in [-1, 1]: rounding in the transforms and the sums
                    // stays far below 1e-5 of that; a wrong tap or transform is off by order 0.1-1.
                    expectClose(r.y, expected, atol: 1e-5 * Double(9 * c), rtol: 0, tag)
                    // Random values leave no near-ties at this rounding: the same winners (ties at ReLU's 0 go
                    // to the first, as the pooling's do).
                    if training { #expect(r.argmax == winners, "\(tag)") }
                    results.append(r.y)
                } }
                #expect(results.dropFirst().allSatisfy { $0.map(\.bitPattern) == results[0].map(\.bitPattern) },
                        "\(variant.testDescription) n\(n) c\(c) \(h)x\(w) oc\(oc): 1 and 2 threads, with and without winners")
                // Image 1 alone: its own call, one image, the bits it had in the batch.
                let one = fclf_conv2d_make_shape(1, Int64(c), Int64(h), Int64(w), Int64(oc), 3, 3, 0)
                let alone = winograd(isa, one, x: Array(x[(c * h * w)..<(2 * c * h * w)]), w: wt, b: b, relu: relu, winners: false)
                #expect(alone.y.map(\.bitPattern) == results[0][perImage..<(2 * perImage)].map(\.bitPattern),
                        "\(variant.testDescription) n\(n) c\(c) \(h)x\(w) oc\(oc): image 1 alone")
            }
        }
    }

    @Test("one image with the second core's help (tasks by groups of tile rows) gives the bits of one thread, every ISA",
          arguments: kernelISAs)
    func assistedKeepsTheBits(_ variant: KernelISA) {
        let isa = variant.raw
        // 2 groups (conv2's 5x5 tiles) and 3 groups (6x6) of tile rows: 2 and 3 tasks.
        for (c, side, oc) in [(32, 13, 64), (4, 14, 13)] {
            let s = fclf_conv2d_make_shape(1, Int64(c), Int64(side), Int64(side), Int64(oc), 3, 3, 0)
            let x = randomArray(c * side * side, seed: 96), wt = randomArray(oc * c * 9, seed: 97), b = randomArray(oc, seed: 98)
            let alone = withThreads(1) { winograd(isa, s, x: x, w: wt, b: b, relu: 1, winners: false).y }
            fclf_assist_begin()
            defer { fclf_assist_end() }
            for _ in 0..<200 {  // the helper takes tasks only when it is awake: many calls, each must match
                let helped = withThreads(2) { winograd(isa, s, x: x, w: wt, b: b, relu: 1, winners: false).y }
                if helped.map(\.bitPattern) != alone.map(\.bitPattern) {
                    Issue.record("\(variant.testDescription) c\(c) \(side)x\(side) oc\(oc): assisted bits differ")
                    break
                }
            }
        }
    }

    @Test("without packed weights it runs the two passes it stands for, bit for bit, winners included")
    func unpackedIsTheTwoPasses() {
        let s = fclf_conv2d_make_shape(2, 32, 13, 13, 64, 3, 3, 0)
        let x = randomArray(2 * 32 * 169, seed: 93), wt = randomArray(64 * 288, seed: 94), b = randomArray(64, seed: 95)
        var full = [Float](repeating: 0, count: 2 * 64 * 121), expected = [Float](repeating: 0, count: 2 * 64 * 25)
        var argmax = [Int32](repeating: -1, count: 2 * 64 * 25), winners = argmax
        fclf_conv2d_forward(&full, nil, x, wt, b, 1, s)
        fclf_maxpool2x2_forward(&expected, &winners, full, 128, 11, 11)
        var y = [Float](repeating: .nan, count: 2 * 64 * 25), work = [Float](repeating: .nan, count: Int(fclf_conv2d_winograd_pool_work_size(s)))
        fclf_conv2d_winograd_pool(&y, &argmax, &work, x, wt, nil, b, 1, s)
        #expect(y.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(argmax == winners)
    }
}

extension KernelWinogradTests {
    @Test("unpooled, it matches the naive convolution (+ ReLU) to rounding on even planes, every image of a batch with the bits of the image alone, 1 and 2 threads; without the kernel it is fclf_conv2d_forward's bits; every ISA",
          arguments: kernelISAs)
    func unpooledMatchesNaive(_ variant: KernelISA) {
        let isa = variant.raw
        // (n, c, h, w, oc): cnn3-bn's conv2 (6x6 tiles, 2 tile rows per vector, 3 vectors) on 3 images (2 threads:
        // each its own share), partial blocks of output channels (13), a 4x7 plane of tiles (rows of 7 tiles fill
        // 14 of 16 lanes), one vector of 4x4 tiles on two channels.
        for (n, c, h, w, oc) in [(3, 32, 14, 14, 64), (2, 3, 14, 12, 13), (3, 5, 10, 16, 20), (2, 2, 10, 10, 9)] {
            let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), 3, 3, 0)
            #expect(fclf_conv2d_winograd_supported(s) != 0)
            #expect((fclf_conv2d_winograd_packed_size_isa(isa, s) > 0) == (isa == Int32(FCLF_ISA_AVX512F.rawValue)))
            let P = Int(s.oh * s.ow), full = n * oc * P
            let x = randomArray(n * c * h * w, seed: 120), wt = randomArray(oc * c * 9, seed: 121), b = randomArray(oc, seed: 122)
            func run(_ s: fclf_conv2d_shape, _ x: [Float], relu: Int32) -> [Float] {
                var wp = [Float](repeating: .nan, count: Int(fclf_conv2d_winograd_packed_size_isa(isa, s)))
                if !wp.isEmpty { fclf_conv2d_winograd_pack_weights_isa(isa, &wp, wt, s) }
                var y = [Float](repeating: .nan, count: Int(s.n * s.oc * s.oh * s.ow))
                var work = [Float](repeating: .nan, count: Int(fclf_conv2d_winograd_work_size(s)))
                wp.withUnsafeBufferPointer { fclf_conv2d_winograd_forward_isa(isa, &y, &work, x, wt, $0.isEmpty ? nil : $0.baseAddress, b, relu, s) }
                return y
            }
            for relu: Int32 in [0, 1] {
                let tag = "\(variant.testDescription) n\(n) c\(c) \(h)x\(w) oc\(oc) relu \(relu)"
                var expected = [Float](repeating: 0, count: full)
                fclf_conv2d_forward_ref(&expected, x, wt, b, s)
                if relu != 0 { expected = expected.map { $0 > 0 ? $0 : 0 } }
                let one = withThreads(1) { run(s, x, relu: relu) }, two = withThreads(2) { run(s, x, relu: relu) }
                // every output written, each within rounding of the direct sum of 9c products of values in [-1, 1]
                expectClose(one, expected, atol: 1e-5 * Double(9 * c), rtol: 0, tag)
                #expect(one.map(\.bitPattern) == two.map(\.bitPattern), "\(tag): 1 and 2 threads")
                let single = fclf_conv2d_make_shape(1, Int64(c), Int64(h), Int64(w), Int64(oc), 3, 3, 0)
                let alone = run(single, Array(x[(c * h * w)..<(2 * c * h * w)]), relu: relu)
                #expect(alone.map(\.bitPattern) == one[(oc * P)..<(2 * oc * P)].map(\.bitPattern), "\(tag): image 1 alone")
                if isa != Int32(FCLF_ISA_AVX512F.rawValue) {  // no kernel: the GEMM's product, bit for bit
                    var gemm = [Float](repeating: 0, count: full)
                    fclf_conv2d_forward_isa(isa, &gemm, nil, x, wt, b, relu, s)
                    #expect(one.map(\.bitPattern) == gemm.map(\.bitPattern), "\(tag): the product it stands for")
                }
            }
        }
        // Odd planes are not tiles: refused (the pooled kernel takes them, dropping the last row as the pooling does).
        #expect(fclf_conv2d_winograd_supported(fclf_conv2d_make_shape(1, 32, 13, 13, 64, 3, 3, 0)) == 0)
        #expect(fclf_conv2d_winograd_pool_supported(fclf_conv2d_make_shape(1, 32, 13, 13, 64, 3, 3, 0)) != 0)
        #expect(fclf_conv2d_winograd_work_size(fclf_conv2d_make_shape(1, 32, 13, 13, 64, 3, 3, 0)) == 0)
    }
}
