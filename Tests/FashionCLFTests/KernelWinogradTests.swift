// Inference's Winograd F(2x2, 3x3) convolution + pooling (CKernels/conv/winograd.c) against the naive
// convolution and pooling, and its bits across batches and thread counts.
import CKernels
import Testing

@Suite("Winograd convolution + pooling")
struct KernelWinogradTests {
    @Test("the shapes it takes: 3x3 'valid', pooled rows of at most 8 tiles, 16-48 tiles that save 1.5x the multiply-adds")
    func supportedShapes() {
        func supported(_ c: Int64, _ h: Int64, _ w: Int64, k: Int64 = 3, same: Int32 = 0) -> Bool {
            fclf_conv2d_winograd_pool_supported(fclf_conv2d_make_shape(1, c, h, w, 64, k, k, same)) != 0
        }
        #expect(supported(32, 13, 13))  // the seed CNN's conv2: 5x5 tiles
        #expect(supported(32, 14, 14))  // cnn3-bn's: 6x6
        #expect(supported(64, 10, 10))  // wide-bn's last: 4x4
        #expect(!supported(32, 13, 13, same: 1))
        #expect(!supported(32, 13, 13, k: 2))
        #expect(!supported(32, 8, 8))    // 3x3 tiles in one vector: too few to pay
        #expect(!supported(32, 20, 20))  // 9x9 tiles: rows longer than 8, 81 tiles
        #expect(!supported(32, 12, 20))  // 5x9: a row of 9 tiles
        #expect(!supported(1, 28, 28))   // one input channel: the direct kernels
    }

    @Test("it matches the naive convolution + ReLU + pooling to rounding, with its winners, every image of a batch with the bits of the image alone, 1 and 2 threads")
    func matchesNaive() {
        // (n, c, h, w, oc): conv2's shape (25 tiles in 2 vectors); a partial block of output channels (13 = 8 + 5)
        // and 36 tiles in 3 vectors with an odd plane (13 output rows: the last dropped by the pooling); 16 tiles
        // (one whole vector) on two input channels; a 4x7 plane of tiles with 20 channels (two blocks and 4).
        for (n, c, h, w, oc) in [(3, 32, 13, 13, 64), (2, 3, 15, 14, 13), (2, 2, 10, 10, 9), (3, 5, 11, 17, 20)] {
            let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), 3, 3, 0)
            #expect(fclf_conv2d_winograd_pool_supported(s) != 0)
            let vector = fclf_isa_active() != Int32(FCLF_ISA_SCALAR.rawValue)  // AVX-512 and AVX2 have the kernel
            #expect((fclf_conv2d_winograd_pool_packed_size(s) > 0) == vector)
            let pooled = n * oc * Int(s.oh / 2) * Int(s.ow / 2), perImage = pooled / n
            let x = randomArray(n * c * h * w, seed: 90), wt = randomArray(oc * c * 9, seed: 91), b = randomArray(oc, seed: 92)
            var wp = [Float](repeating: .nan, count: Int(fclf_conv2d_winograd_pool_packed_size(s)))
            if !wp.isEmpty { fclf_conv2d_winograd_pool_pack_weights(&wp, wt, s) }
            for relu: Int32 in [0, 1] {
                var expected = [Float](repeating: 0, count: pooled), winners = [Int32](repeating: -1, count: pooled)
                fclf_conv2d_pool_forward_ref(&expected, &winners, x, wt, b, relu, s)
                var results: [[Float]] = []
                for threads in [1, 2] { for training in [false, true] {
                    var y = [Float](repeating: .nan, count: pooled), argmax = [Int32](repeating: -1, count: pooled)
                    var work = [Float](repeating: .nan, count: Int(fclf_conv2d_winograd_pool_work_size(s)))
                    withThreads(threads) {
                        wp.withUnsafeBufferPointer { w in
                            argmax.withUnsafeMutableBufferPointer { a in
                                fclf_conv2d_winograd_pool(&y, training ? a.baseAddress : nil, &work, x, wt, w.isEmpty ? nil : w.baseAddress, b, relu, s)
                            }
                        }
                    }
                    let tag = "n\(n) c\(c) \(h)x\(w) oc\(oc) relu \(relu), \(threads) threads\(training ? ", winners" : "")"
                    // Each output sums 9c products of values in [-1, 1]: rounding in the transforms and the sums
                    // stays far below 1e-5 of that; a wrong tap or transform is off by order 1.
                    expectClose(y, expected, atol: 1e-5 * Double(9 * c), rtol: 0, tag)
                    // Random values leave no near-ties at this rounding: the same winners (ties at ReLU's 0 go
                    // to the first, as the pooling's do).
                    if training { #expect(argmax == winners, "\(tag)") }
                    results.append(y)
                } }
                #expect(results.dropFirst().allSatisfy { $0.map(\.bitPattern) == results[0].map(\.bitPattern) },
                        "n\(n) c\(c) \(h)x\(w) oc\(oc): 1 and 2 threads, with and without winners")
                // Image 1 alone: its own call, one image, the bits it had in the batch.
                let one = fclf_conv2d_make_shape(1, Int64(c), Int64(h), Int64(w), Int64(oc), 3, 3, 0)
                var alone = [Float](repeating: .nan, count: perImage)
                var work = [Float](repeating: .nan, count: Int(fclf_conv2d_winograd_pool_work_size(one)))
                Array(x[(c * h * w)..<(2 * c * h * w)]).withUnsafeBufferPointer { xi in
                    wp.withUnsafeBufferPointer { fclf_conv2d_winograd_pool(&alone, nil, &work, xi.baseAddress, wt, $0.isEmpty ? nil : $0.baseAddress, b, relu, one) }
                }
                #expect(alone.map(\.bitPattern) == results[0][perImage..<(2 * perImage)].map(\.bitPattern), "n\(n) c\(c) \(h)x\(w) oc\(oc): image 1 alone")
            }
        }
    }

    @Test("without packed weights it runs the two passes it stands for, bit for bit, winners included")
    func unpackedIsTheTwoPasses() {
        let s = fclf_conv2d_make_shape(2, 32, 13, 13, 64, 3, 3, 0)
        let x = randomArray(2 * 32 * 169, seed: 93), wt = randomArray(64 * 288, seed: 94), b = randomArray(64, seed: 95)
        var full = [Float](repeating: 0, count: 2 * 64 * 121), expected = [Float](repeating: 0, count: 2 * 64 * 25)
        fclf_conv2d_forward(&full, nil, x, wt, b, 1, s)
        fclf_maxpool2x2_forward(&expected, nil, full, 128, 11, 11)
        var y = [Float](repeating: .nan, count: 2 * 64 * 25), work = [Float](repeating: .nan, count: Int(fclf_conv2d_winograd_pool_work_size(s)))
        var argmax = [Int32](repeating: -1, count: 2 * 64 * 25), winners = argmax
        fclf_maxpool2x2_forward(&expected, &winners, full, 128, 11, 11)
        fclf_conv2d_winograd_pool(&y, &argmax, &work, x, wt, nil, b, 1, s)
        #expect(y.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(argmax == winners)
    }
}
