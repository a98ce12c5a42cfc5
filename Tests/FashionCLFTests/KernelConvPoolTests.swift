// The convolution fused with its 2x2 max pooling, on every variant the CPU has: against the separate kernels
// (bitwise where the sums are the same), and against its naive reference. (A file of its own only to keep KernelTests.swift short.)
import CKernels
@testable import FashionCLF
import Testing

extension KernelTests {
    @Test("convolution fused with its 2x2 max pooling gives the separate kernels' forward bits (and their gradients: bitwise through the GEMM, to rounding from x) and matches its reference, every ISA",
          arguments: kernelISAs)
    func convPoolFused(_ variant: KernelISA) {
        let isa = variant.raw
        // (n, c, h, w, oc, k, same): K = 9 (conv1's shape, the AVX-512 path), K = 4 and K = 1 (portable path),
        // odd sizes (a row and a column left over by the pooling), an odd channel count, padding (the taps read
        // from a zero-framed copy of each image); K = 36 and K = 288 (conv2's shape) take the GEMM path, where
        // only the backward pass is fused. More small-K shapes: one large enough for 2 threads (padded), three
        // channels 2x2 'same' (a multi-channel frame), 17 x 17 outputs (odd, rows of 19: AVX2's dense routing);
        // and three the one-pass forward refuses, which the separate forward convolves (its col read back, the
        // same bits): planes too large for the stack (46 x 45 output; 45 x 45 'same', rows of 47), and a frame
        // too large (3 x 41 x 41).
        for (n, c, h, w, oc, k, same) in [(5, 1, 28, 28, 32, 3, false), (3, 1, 9, 11, 5, 3, true), (2, 1, 7, 6, 3, 2, false),
                                          (4, 1, 5, 5, 7, 1, false), (2, 1, 12, 13, 4, 3, false), (3, 4, 9, 8, 6, 3, true),
                                          (10, 1, 28, 28, 8, 3, true), (2, 3, 9, 10, 5, 2, true), (2, 1, 19, 19, 5, 3, false),
                                          (4, 32, 13, 13, 64, 3, false), (2, 1, 48, 47, 3, 3, false), (1, 1, 45, 45, 2, 3, true),
                                          (1, 3, 40, 40, 2, 2, true)] {
            let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), Int64(k), Int64(k), same ? 1 : 0)
            // One pass when few taps, two planes with rows as long as the (framed) input's fit the stack, and so
            // does a padded image's frame.
            let smallK = c * k * k < 16
            let (fh, fw) = (Int(s.oh) + k - 1, Int(s.ow) + k - 1)
            let onePass = smallK && Int(s.oh) * fw <= 2048 && (!same || k == 1 || c * fh * fw <= 4096)
            #expect((fclf_conv2d_pool_supported(s) != 0) == onePass)
            let (oh, ow) = (Int(s.oh), Int(s.ow))
            let full = n * oc * oh * ow, pooled = n * oc * (oh / 2) * (ow / 2)
            let x = randomArray(n * c * h * w, seed: 70), wt = randomArray(oc * c * k * k, seed: 71), b = randomArray(oc, seed: 72)
            let dy = randomArray(pooled, seed: 73)
            for relu: Int32 in [0, 1] { for wantDx in [false, true] {
                let shapeTag = "conv+pool \(variant) n\(n) c\(c) \(h)x\(w) oc\(oc) k\(k) same \(same) relu \(relu) dx \(wantDx)"
                var fusedResults: [[Float]] = []
                for threads in [1, 2] {
                    let tag = "\(shapeTag), \(threads) threads"
                    // Separate: convolution, pooling; backward: pooling (with the ReLU mask), convolution without it.
                    var y = [Float](repeating: 0, count: full), col = [Float](repeating: 0, count: Int(fclf_conv2d_col_size(s)))
                    var p1 = [Float](repeating: 0, count: pooled), a1 = [Int32](repeating: 0, count: pooled)
                    var dyFull = [Float](repeating: 0, count: full), dcol = [Float](repeating: 0, count: Int(fclf_conv2d_dcol_size(s)))
                    var tmp = [Float](repeating: 0, count: Int(fclf_conv2d_tmp_size(s)))
                    // the fused pass gets only the tmp it says it uses
                    var tmp2 = [Float](repeating: .nan, count: Int(fclf_conv2d_backward_tmp_size(s, wantDx ? 1 : 0, 1)))
                    var dw1 = [Float](repeating: 0.5, count: wt.count), db1 = [Float](repeating: 0.25, count: oc)
                    var dx1 = [Float](repeating: .nan, count: x.count)
                    // Fused (the one-pass forward where supported).
                    var p2 = [Float](repeating: .nan, count: pooled), a2 = [Int32](repeating: -1, count: pooled)
                    var col2: [Float] = [], dcol2 = dcol
                    var dw2 = [Float](repeating: 0.5, count: wt.count), db2 = [Float](repeating: 0.25, count: oc)
                    var dx2 = [Float](repeating: .nan, count: x.count)
                    withThreads(threads) {
                        fclf_conv2d_forward_isa(isa, &y, &col, x, wt, b, relu, s)
                        fclf_maxpool2x2_forward_isa(isa, &p1, &a1, y, Int64(n * oc), Int64(oh), Int64(ow))
                        fclf_maxpool2x2_backward_isa(isa, &dyFull, dy, a1, relu != 0 ? p1 : nil, Int64(n * oc), Int64(oh), Int64(ow))
                        dx1.withUnsafeMutableBufferPointer { d in
                            fclf_conv2d_backward_isa(isa, wantDx ? d.baseAddress : nil, &dw1, &db1, &dcol, &tmp, dyFull, y, col, x, wt, 0, s)
                        }
                        if onePass {
                            fclf_conv2d_pool_forward_isa(isa, &p2, &a2, x, wt, b, relu, s)
                        } else {
                            (p2, a2) = (p1, a1)
                        }
                        if !onePass { col2 = col }  // as the separate forward wrote it
                        // the one-pass shapes read x, not col (an empty array: a null pointer)
                        dx2.withUnsafeMutableBufferPointer { d in
                            col2.withUnsafeBufferPointer { cp in
                                fclf_conv2d_pool_backward_isa(isa, wantDx ? d.baseAddress : nil, &dw2, &db2, &dcol2, &tmp2, dy, a2,
                                                              relu != 0 ? p2 : nil, cp.baseAddress, x, wt, s)
                            }
                        }
                    }
                    #expect(p2 == p1 && a2 == a1, "\(tag): pooled output or winners")
                    if onePass {  // the same products in other lanes: to rounding
                        let (P, scale) = (Double(oh * ow), Double(n * oh * ow).squareRoot())
                        expectClose(dw2, dw1, atol: 1e-5 * scale * 4, rtol: 1e-5, "\(tag): weight gradient, fused from x against the separate passes")
                        expectClose(db2, db1, atol: 1e-5 * scale * 4, rtol: 1e-5, "\(tag): bias gradient, fused from x against the separate passes")
                        if wantDx { expectClose(dx2, dx1, atol: 1e-5 * P.squareRoot(), rtol: 1e-5, "\(tag): input gradient") }
                        if wantDx { #expect(dx2 == dx1, "\(tag): input gradient (the same GEMM on the same dz)") }
                    } else {
                        #expect(dw2 == dw1 && db2 == db1, "\(tag): weight and bias gradients")
                        if wantDx { #expect(dx2 == dx1, "\(tag): input gradient") }
                    }
                    fusedResults.append(p2 + a2.map(Float.init) + dw2 + db2 + (wantDx ? dx2 : []))
                    guard threads == 1 else { continue }
                    // The naive references: forward from the direct loops (each winner must hold its window's
                    // maximum; near-ties may pick another index), backward given the fused pass's winners.
                    let tol = 1e-5 * Double(c * k * k).squareRoot() * 4
                    var pRef = [Float](repeating: 0, count: pooled), aRef = [Int32](repeating: 0, count: pooled)
                    fclf_conv2d_pool_forward_ref(&pRef, &aRef, x, wt, b, relu, s)
                    expectClose(p2, pRef, atol: tol, rtol: 1e-5, "\(tag): pooled y against the reference")
                    var yRef = [Float](repeating: 0, count: full)
                    fclf_conv2d_forward_ref(&yRef, x, wt, b, s)
                    if relu != 0 { yRef = yRef.map { $0 > 0 ? $0 : 0 } }
                    let (P, Q) = (oh * ow, (oh / 2) * (ow / 2))
                    let atWinners = (0..<pooled).map { yRef[($0 / Q) * P + Int(a2[$0])] }
                    expectClose(atWinners, pRef, atol: tol, rtol: 1e-5, "\(tag): the winners hold their windows' maxima")
                    var dxRef = [Float](repeating: .nan, count: x.count), dwRef = [Float](repeating: 0.5, count: wt.count)
                    var dbRef = [Float](repeating: 0.25, count: oc)
                    dxRef.withUnsafeMutableBufferPointer { d in
                        fclf_conv2d_pool_backward_ref(wantDx ? d.baseAddress : nil, &dwRef, &dbRef, dy, a2, relu != 0 ? p2 : nil, x, wt, s)
                    }
                    expectClose(dw2, dwRef, atol: 1e-5 * Double(n * P).squareRoot() * 4, rtol: 1e-5, "\(tag): dw against the reference")
                    expectClose(db2, dbRef, atol: 1e-4, rtol: 1e-5, "\(tag): db against the reference")
                    if wantDx { expectClose(dx2, dxRef, atol: tol, rtol: 1e-5, "\(tag): dx against the reference") }
                }
                #expect(fusedResults[0] == fusedResults[1], "\(shapeTag): results depend on the thread count")
            } }
        }
    }
}

extension KernelTests {
    @Test("inference's per-window convolution + pooling gives the bits of the GEMM then the pooling pass (or of the one-pass kernel), packed or not, 1 and 2 threads, every ISA",
          arguments: kernelISAs)
    func windowPoolEqualsTwoPasses(_ variant: KernelISA) {
        let isa = variant.raw
        // (n, c, h, w, oc, k, same): conv2's shape for one image and a batch; 20 channels (a partial vector, two
        // groups: two windows per tile, then one left over in a pooled row of 5); 48 channels (three groups),
        // 'same' padding; 16 channels (four windows per tile, one left over); K = 576 (two or three K blocks at
        // the blockings the GEMM chooses on our machines, as K = 288 has two at KC 256); 80 channels with padding
        // (a group of four, then one); a 2x2 kernel with 'same' padding, all of it below and right (the padded
        // copy must still be made). K = 9 (conv1's shape, one image and a batch; 20 channels with padding) rounds
        // as the one-pass kernel instead, the bias first; on one channel (3x3) it has pixels in lanes: 66 and 38
        // columns take two and three blocks of 32, 6 and 7 channels a group of 4 and one of 2 or 3. AVX2's takes
        // blocks of 16 columns, the last moved left onto the one before: 17 columns (odd) are exactly one block, 23
        // with padding two overlapping ones, and 10 or fewer a masked block.
        for (n, c, h, w, oc, k, same) in [(1, 32, 13, 13, 64, 3, false), (3, 32, 13, 13, 64, 3, false), (2, 16, 9, 12, 20, 3, false),
                                          (2, 4, 7, 7, 48, 3, true), (2, 16, 10, 12, 16, 3, false), (1, 64, 10, 10, 64, 3, false),
                                          (2, 8, 6, 6, 80, 3, true), (2, 8, 6, 6, 20, 2, true), (1, 1, 28, 28, 32, 3, false), (3, 1, 28, 28, 32, 3, false),
                                          (2, 1, 9, 11, 20, 3, true), (2, 1, 30, 66, 6, 3, true), (1, 1, 13, 40, 7, 3, false),
                                          (1, 1, 19, 19, 5, 3, false), (2, 1, 21, 23, 3, 3, true)] {
            let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), Int64(k), Int64(k), same ? 1 : 0)
            #expect(fclf_conv2d_window_pool_supported(s) != 0)
            // The window kernel runs wherever the CPU has AVX-512, or AVX2 for the GEMM's shapes and one channel 3x3
            // (elsewhere both calls take the two passes). The packed layout is the same for both.
            #expect((fclf_conv2d_window_pool_packed_size(s) > 0) == windowKernelExpected(s))
            let (oh, ow) = (Int(s.oh), Int(s.ow)), pooled = n * oc * (oh / 2) * (ow / 2)
            var x = randomArray(n * c * h * w, seed: 80), wt = randomArray(oc * c * k * k, seed: 81)
            let b = randomArray(oc, seed: 82)
            x[5] = .nan  // propagates (or is zeroed by the ReLU) the same way on both paths
            wt[3] = 0
            var wp = [Float](repeating: .nan, count: Int(fclf_conv2d_window_pool_packed_size(s)))
            if !wp.isEmpty { fclf_conv2d_window_pool_pack_weights(&wp, wt, s) }
            for relu: Int32 in [0, 1] { for withBias in [false, true] { for threads in [1, 2] {
                let tag = "\(variant) n\(n) c\(c) \(h)x\(w) oc\(oc) k\(k) same \(same) relu \(relu) bias \(withBias), \(threads) threads"
                var y = [Float](repeating: 0, count: n * oc * oh * ow), expected = [Float](repeating: 0, count: pooled)
                var work = [Float](repeating: .nan, count: Int(fclf_conv2d_window_pool_work_size(s)))
                var packed = [Float](repeating: .nan, count: pooled), unpacked = packed
                b.withUnsafeBufferPointer { bp in
                    let bias = withBias ? bp.baseAddress : nil
                    withThreads(threads) {
                        if c * k * k == 9 {
                            fclf_conv2d_pool_forward_isa(isa, &expected, nil, x, wt, bias, relu, s)
                        } else {
                            fclf_conv2d_forward_isa(isa, &y, nil, x, wt, bias, relu, s)
                            fclf_maxpool2x2_forward_isa(isa, &expected, nil, y, Int64(n * oc), Int64(oh), Int64(ow))
                        }
                        wp.withUnsafeBufferPointer { fclf_conv2d_window_pool_isa(isa, &packed, &work, x, wt, $0.isEmpty ? nil : $0.baseAddress, bias, relu, s) }
                        fclf_conv2d_window_pool_isa(isa, &unpacked, &work, x, wt, nil, bias, relu, s)
                    }
                }
                #expect(packed.map(\.bitPattern) == expected.map(\.bitPattern), "\(tag): packed weights")
                #expect(unpacked.map(\.bitPattern) == expected.map(\.bitPattern), "\(tag): unpacked (the two passes)")
            } } }
        }
    }
}

extension KernelTests {
    @Test("the seed CNN's conv2 weight gradient at the winners rounds by the variant, not by the CPU: one FMA per term in AVX2 and AVX-512, a product and a sum in the scalar one, images then windows in order (bit for bit)",
          arguments: kernelISAs)
    func poolBackwardAtWinnersRounding(_ variant: KernelISA) {
        // 32 channels, 3x3: the kernel's register path (conv_pool.c, winners_dw_c32k3), whose target_clones copies
        // with FMA once fused every multiply-add whatever the variant; 'valid', so a winner's tap (u, v) is x at
        // (wy + u, wx + v)
        let (n, c, h, oc) = (2, 32, 9, 3)
        let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(h), Int64(oc), 3, 3, 0)
        let (ow, windows) = (Int(s.ow), Int(s.oh / 2) * Int(s.ow / 2))
        let pooled = n * oc * windows
        let x = randomArray(n * c * h * h, seed: 120), wt = randomArray(oc * c * 9, seed: 121)
        let b = randomArray(oc, seed: 122), dy = randomArray(pooled, seed: 123)
        var y = [Float](repeating: 0, count: pooled), argmax = [Int32](repeating: -1, count: pooled)
        fclf_conv2d_pool_forward_ref(&y, &argmax, x, wt, b, 0, s)
        var dw = [Float](repeating: 0.5, count: oc * c * 9), db = [Float](repeating: 0.25, count: oc)
        var work = [Float](repeating: .nan, count: Int(fclf_conv2d_pool_backward_winners_work_size(s)))
        fclf_conv2d_pool_backward_winners_isa(variant.raw, nil, &dw, &db, &work, dy, argmax, nil, x, wt, s)
        let fused = variant.raw != Int32(FCLF_ISA_SCALAR.rawValue)
        var expected = [Float](repeating: 0, count: dw.count)
        for o in 0..<oc { for ci in 0..<c { for u in 0..<3 { for v in 0..<3 {
            var acc: Float = 0
            for i in 0..<n { for q in 0..<windows {
                let at = (i * oc + o) * windows + q, (wy, wx) = (Int(argmax[at]) / ow, Int(argmax[at]) % ow)
                let g = dy[at], xv = x[((i * c + ci) * h + wy + u) * h + wx + v]
                acc = fused ? acc.addingProduct(g, xv) : acc + g * xv
            } }
            expected[(o * c + ci) * 9 + u * 3 + v] = 0.5 + acc
        } } } }
        #expect(dw.map(\.bitPattern) == expected.map(\.bitPattern), "\(variant): dw is not \(fused ? "fused" : "unfused") in order")
        // and not merely close to the other rounding: the two differ somewhere for these values
        let other = (0..<dw.count).contains { e in
            let (o, ci, u, v) = (e / (c * 9), e / 9 % c, e % 9 / 3, e % 3)
            var acc: Float = 0
            for i in 0..<n { for q in 0..<windows {
                let at = (i * oc + o) * windows + q, (wy, wx) = (Int(argmax[at]) / ow, Int(argmax[at]) % ow)
                let g = dy[at], xv = x[((i * c + ci) * h + wy + u) * h + wx + v]
                acc = fused ? acc + g * xv : acc.addingProduct(g, xv)
            } }
            return 0.5 + acc != dw[e]
        }
        #expect(other, "\(variant): fused and unfused sums agree everywhere, so this test could not tell them apart")
    }

    @Test("the backward pass at the pooling's winners matches the naive routing + convolution gradient to rounding, dx, dw and db, with and without ReLU's mask and dx, the same bits on 1 and 2 threads, every ISA",
          arguments: kernelISAs)
    func poolBackwardAtWinners(_ variant: KernelISA) {
        // (n, c, h, w, oc, kh, kw, same): conv2's shape (32 channels 3x3: the sums in registers), the same with
        // 'same' padding (framed planes) and an odd plane; the general path on 3 channels, an odd 15x14 plane (the
        // last output row dropped by the pooling), 2x2 'same' kernels on 8 channels, 5x5 on 4, one large enough
        // to run on 2 threads (n c kh kw oh ow >= 65536, fclf_conv_big), and a 2x4 kernel on one image.
        for (n, c, h, w, oc, kh, kw, same) in [(3, 32, 13, 13, 64, 3, 3, false), (2, 32, 9, 11, 12, 3, 3, true),
                                               (2, 3, 15, 14, 13, 3, 3, false), (2, 8, 6, 6, 5, 2, 2, true),
                                               (2, 4, 12, 12, 7, 5, 5, false), (4, 8, 20, 20, 9, 3, 3, true),
                                               (1, 5, 9, 10, 3, 2, 4, true)] {
            let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), Int64(kh), Int64(kw), same ? 1 : 0)
            let k = kh * kw
            #expect(fclf_conv2d_pool_backward_winners_supported(s) != 0)
            let pooled = n * oc * Int(s.oh / 2) * Int(s.ow / 2)
            let x = randomArray(n * c * h * w, seed: 110), wt = randomArray(oc * c * k, seed: 111)
            let b = randomArray(oc, seed: 112), dy = randomArray(pooled, seed: 113)
            for relu: Int32 in [0, 1] {
                var y = [Float](repeating: 0, count: pooled), argmax = [Int32](repeating: -1, count: pooled)
                fclf_conv2d_pool_forward_ref(&y, &argmax, x, wt, b, relu, s)
                var dxRef = [Float](repeating: 0, count: n * c * h * w), dwRef = [Float](repeating: 0.5, count: oc * c * k)
                var dbRef = [Float](repeating: 0.25, count: oc)
                fclf_conv2d_pool_backward_ref(&dxRef, &dwRef, &dbRef, dy, argmax, relu != 0 ? y : nil, x, wt, s)
                var results: [[Float]] = []
                for threads in [1, 2] { for withDx in [true, false] {
                    let tag = "\(variant) n\(n) c\(c) \(h)x\(w) oc\(oc) k\(kh)x\(kw) same \(same) relu \(relu), \(threads) threads, dx \(withDx)"
                    var dx = [Float](repeating: .nan, count: n * c * h * w), dw = [Float](repeating: 0.5, count: oc * c * k)
                    var db = [Float](repeating: 0.25, count: oc)
                    var work = [Float](repeating: .nan, count: Int(fclf_conv2d_pool_backward_winners_work_size(s)))
                    withThreads(threads) {
                        dx.withUnsafeMutableBufferPointer { d in
                            y.withUnsafeBufferPointer { yp in
                                fclf_conv2d_pool_backward_winners_isa(variant.raw, withDx ? d.baseAddress : nil, &dw, &db, &work, dy,
                                                                      argmax, relu != 0 ? yp.baseAddress : nil, x, wt, s)
                            }
                        }
                    }
                    // dw and db sum one term per window and image (values in [-1, 1]), dx one per output channel and
                    // tap: float rounding stays far below 1e-5 of those counts; a wrong tap or winner is off by
                    // order 0.1-1. dw and db accumulate onto what they held.
                    let windows = pooled / oc
                    expectClose(dw, dwRef, atol: 1e-5 * Double(windows), rtol: 0, "\(tag): dw")
                    expectClose(db, dbRef, atol: 1e-5 * Double(windows), rtol: 0, "\(tag): db")
                    if withDx {
                        expectClose(dx, dxRef, atol: 1e-5 * Double(k * oc), rtol: 0, "\(tag): dx")
                        results.append(dx + dw + db)
                    } else {
                        #expect(dx.allSatisfy { $0.isNaN }, "\(tag): dx untouched")
                    }
                } }
                #expect(results[1].map(\.bitPattern) == results[0].map(\.bitPattern),
                        "\(variant) n\(n) c\(c) \(h)x\(w) oc\(oc) k\(kh)x\(kw) relu \(relu): 1 and 2 threads")
            }
        }
        // conv1's shape (9 taps) is not taken: no work, no writes.
        let conv1 = fclf_conv2d_make_shape(2, 1, 28, 28, 32, 3, 3, 0)
        #expect(fclf_conv2d_pool_backward_winners_supported(conv1) == 0)
        #expect(fclf_conv2d_pool_backward_winners_work_size(conv1) == 0)
        let pooled1 = 2 * 32 * 13 * 13
        var dx1 = [Float](repeating: .nan, count: 2 * 28 * 28), dw1 = [Float](repeating: .nan, count: 32 * 9)
        var db1 = [Float](repeating: .nan, count: 32), work1: [Float] = [.nan]
        let argmax1 = [Int32](repeating: 0, count: pooled1), dy1 = randomArray(pooled1, seed: 114)
        fclf_conv2d_pool_backward_winners(&dx1, &dw1, &db1, &work1, dy1, argmax1, nil, randomArray(2 * 28 * 28, seed: 115),
                                          randomArray(32 * 9, seed: 116), conv1)
        #expect((dx1 + dw1 + db1 + work1).allSatisfy { $0.isNaN }, "conv1's shape: nothing written")
        // A shape whose sizes disagree (the image larger than its output and kernel allow) is refused, not overrun.
        var bad = fclf_conv2d_make_shape(2, 32, 13, 13, 64, 3, 3, 0)
        bad.h += 4
        #expect(fclf_conv2d_pool_backward_winners_supported(bad) == 0)
        #expect(fclf_conv2d_pool_backward_winners_work_size(bad) == 0)
    }
}

/// Whether this CPU's variant has the per-window kernel for shape s (never for those the plane tiles take): AVX-512 for
/// every supported shape, AVX2 for those the GEMM takes (c*kh*kw >= 16) and one channel 3x3 (conv1, output pixels in the lanes).
func windowKernelExpected(_ s: fclf_conv2d_shape) -> Bool {
    let active = fclf_isa_active()
    let k9 = s.c == 1 && s.kh == 3 && s.kw == 3
    if fclf_conv2d_plane_taken_isa(active, s) != 0 { return false }
    return active == Int32(FCLF_ISA_AVX512F.rawValue) || (active == Int32(FCLF_ISA_AVX2.rawValue) && (s.c * s.kh * s.kw >= 16 || k9))
}
