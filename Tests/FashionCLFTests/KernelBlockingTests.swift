// The GEMM's cache blocking (CKernels/gemm/blocking.c): the analytic model keeps its operands inside the
// caches it is given, and a product's bits depend on KC alone, never on MC, NC or the thread count. And
// weights packed once for inference give the bits of packing them on every call.
import CKernels
@testable import FashionCLF
import Testing

private func caches(l1: Int64, l1Ways: Int64, l2: Int64, l2Ways: Int64, l3: Int64, sharing: Int64) -> fclf_cache_info {
    var c = fclf_cache_info()
    c.l1d_bytes = l1; c.l1d_ways = l1Ways; c.l2_bytes = l2; c.l2_ways = l2Ways; c.l3_bytes = l3; c.l3_sharing = sharing
    return c
}

/// Packed panels are read with aligned vector loads: 64-byte aligned memory, as the header asks.
private func alignedFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64).bindMemory(to: Float.self, capacity: count)
    p.initialize(repeating: .nan, count: count)
    return p
}

@Suite("GEMM blocking")
struct KernelBlockingTests {
    /// Intel Xeon (Skylake-SP), AMD Zen 4, a small-L2 desktop core, an L3-less part, and nothing known.
    let machines: [(String, fclf_cache_info)] = [
        ("Xeon", caches(l1: 32768, l1Ways: 8, l2: 1 << 20, l2Ways: 16, l3: 37_486_592, sharing: 2)),
        ("Zen 4", caches(l1: 32768, l1Ways: 8, l2: 1 << 20, l2Ways: 8, l3: 32 << 20, sharing: 16)),
        ("Haswell", caches(l1: 32768, l1Ways: 8, l2: 256 << 10, l2Ways: 8, l3: 8 << 20, sharing: 8)),
        ("no L3", caches(l1: 49152, l1Ways: 12, l2: 1280 << 10, l2Ways: 10, l3: 0, sharing: 0)),
        ("unknown", fclf_cache_info()),
    ]
    let tiles: [(mr: Int32, nr: Int32)] = [(8, 32), (6, 16), (4, 8)]

    @Test("the model's blocks fit the caches they are derived from, in whole tiles")
    func modelFitsCaches() {
        for (name, c) in machines {
            let known = c.l1d_bytes > 0
            let l1 = known ? c.l1d_bytes : 32768
            let l2 = known ? c.l2_bytes : 1 << 20, w2 = known ? c.l2_ways : 16
            for t in tiles {
                var cc = c
                let b = fclf_gemm_blocking_for(&cc, t.mr, t.nr)
                let tag = "\(name) \(t.mr)x\(t.nr): mc \(b.mc) kc \(b.kc) nc \(b.nc)"
                #expect(b.kc >= 16 && b.kc % 8 == 0 && b.kc <= Int64(FCLF_GEMM_KC_MAX), "\(tag)")
                // The B micro-panel fits L1, and fills at least half of it (unless KC hit its cap).
                #expect(b.kc * Int64(t.nr) * 4 <= l1, "\(tag): B micro-panel overflows L1")
                #expect(b.kc * Int64(t.nr) * 4 * 2 > l1 || b.kc == Int64(FCLF_GEMM_KC_MAX), "\(tag): B micro-panel under half of L1")
                #expect(b.mc % Int64(t.mr) == 0 && b.mc >= Int64(t.mr), "\(tag)")
                #expect(b.mc * b.kc * 4 <= l2 / w2 * max(w2 - 2, 1) || b.mc == Int64(t.mr), "\(tag): A block overflows L2")
                #expect(b.nc % Int64(t.nr) == 0 && b.nc >= Int64(t.nr) && b.nc <= Int64(FCLF_GEMM_NC_MAX), "\(tag)")
                if c.l3_bytes > 0 {
                    #expect(b.nc * b.kc * 4 <= c.l3_bytes / max(c.l3_sharing, 1) / 2 || b.nc == Int64(t.nr), "\(tag): B panel overflows L3 share")
                }
            }
        }
        // In numbers: 32 KB of L1 and the 8 x 32 tile: a 256 x 32 B micro-panel; a 48 KB L1: 384.
        var xeon = machines[0].1
        #expect(fclf_gemm_blocking_for(&xeon, 8, 32).kc == 256)
        var big = xeon
        big.l1d_bytes = 49152; big.l1d_ways = 12
        #expect(fclf_gemm_blocking_for(&big, 8, 32).kc == 384)
    }

    @Test("this machine's caches are read and the decided blocking is a valid one")
    func thisMachine() {
        let b = GEMMBlocking.active
        print("this machine: \(b)")
        #expect(b.l1dBytes >= 4096 && b.l2Bytes >= b.l1dBytes, "\(b)")
        #expect(["cpuid", "sysfs", "defaults", "FCLF_GEMM_BLOCKING"].contains(b.origin))
        #expect(b.kc >= 1 && b.mc >= 1 && b.nc >= 1)
    }

    @Test("MC, NC and the thread count move no bits; KC does, and every blocking stays accurate; every ISA")
    func bitsDependOnKCOnly() {
        let (m, n, k) = (70, 300, 500)
        let a = randomArray(m * k, seed: 11), bm = randomArray(k * n, seed: 12)
        var expected = [Float](repeating: 0, count: m * n)
        fclf_sgemm_ref(0, 0, Int64(m), Int64(n), Int64(k), 1, a, Int64(k), bm, Int64(n), 0, &expected, Int64(n))
        let c0 = randomArray(m * n, seed: 13)
        func run(_ isa: Int32, _ mc: Int64, _ kc: Int64, _ nc: Int64, threads: Int = 1, ta: Int32 = 0, alpha: Float = 1,
                 beta: Float = 0) -> [Float] {
            var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : c0
            let at = ta == 0 ? a : (0..<m * k).map { a[($0 % m) * k + $0 / m] }
            withThreads(threads) {
                #expect(fclf_sgemm_blocked(isa, fclf_gemm_blocking(mc: mc, kc: kc, nc: nc), ta, 0, Int64(m), Int64(n), Int64(k), alpha,
                                           at, ta == 0 ? Int64(k) : Int64(m), bm, Int64(n), beta, &c, Int64(n)) == 0)
            }
            return c
        }
        for variant in kernelISAs {
            let isa = variant.raw, name = String(cString: fclf_isa_name(isa))
            let base = run(isa, 4096, 256, 16384)  // M <= MC: B is packed panel by panel as it is used
            for (mc, nc) in [(Int64(8), Int64(32)), (16, 64), (40, 100), (1000, 2048), (4096, 32), (1000, 100)] {
                #expect(run(isa, mc, 256, nc) == base, "\(name): mc \(mc) nc \(nc) changed the bits")
            }
            #expect(run(isa, 16, 256, 64, threads: 2) == base, "\(name): 2 threads changed the bits")
            // M <= MC with A packed whole runs each few panels through all K blocks; M > MC, block by block.
            let blockByBlock = run(isa, 8, 256, 32, alpha: 1.5, beta: 0.5)
            #expect(run(isa, 4096, 256, 16384, alpha: 1.5, beta: 0.5) == blockByBlock,
                    "\(name): alpha 1.5, beta 0.5: the loop order changed the bits")
            #expect(run(isa, 4096, 256, 16384, threads: 2, alpha: 1.5, beta: 0.5) == blockByBlock,
                    "\(name): alpha 1.5, beta 0.5, 2 threads: the loop order changed the bits")
            #expect(run(isa, 4096, 256, 16384, ta: 1) == base, "\(name): transposed A changed the bits")
            for kc in [Int64(1), 7, 160, 320, 1024] {
                expectClose(run(isa, 96, kc, 2048), expected, atol: 4e-4, rtol: 1e-5, "\(name) kc \(kc)")
            }
            // 500 = 2 x 250 with KC 256 or 300: the same equal blocks, so the same bits.
            #expect(run(isa, 96, 300, 2048) == base, "\(name): KC 300 and 256 both give two blocks of 250")
            #expect(run(isa, 96, 160, 2048) != base, "\(name): KC 160 (four blocks of 125) should round differently")
        }
    }

    @Test("Long-K products with a small C (split among threads by K blocks) give the serial bits at every thread count; every ISA")
    func splitKMatchesSerial() {
        // (M, N, K, KC): conv1's and conv2's weight gradients (dW^T) at batch 32, and ragged edges. 2 threads
        // split K when 2 max(M, N) < kstep: KC 256 for the small ones, 1024 (4 blocks of 968) for conv2's.
        // More threads than cores are left out: LeakSanitizer reports libomp's own allocations (5.7 KB from
        // inside libomp.so) when a team grows past 2 threads here; the 16-core runs check 1-16 threads
        // (docs/benchmarks.md, the digests).
        for (m, n, k, kc) in [(9, 32, 21_632, Int64(256)), (288, 64, 3_872, 1024), (13, 37, 5_001, 256)] {
            let a = randomArray(m * k, seed: UInt64(m)), bm = randomArray(k * n, seed: UInt64(n))
            let c0 = randomArray(m * n, seed: 3)
            for variant in kernelISAs {
                let isa = variant.raw, name = String(cString: fclf_isa_name(isa))
                for (ta, tb, alpha, beta) in [(Int32(0), Int32(1), Float(1), Float(0)), (1, 0, 0.5, 1), (0, 0, 1.5, -0.25)] {
                    let at = ta == 0 ? a : (0..<m * k).map { a[($0 % m) * k + $0 / m] }
                    let bt = tb == 0 ? bm : (0..<k * n).map { bm[($0 % k) * n + $0 / k] }
                    func run(_ threads: Int) -> [Float] {
                        var c = c0
                        withThreads(threads) {
                            #expect(fclf_sgemm_blocked(isa, fclf_gemm_blocking(mc: 896, kc: kc, nc: 4096), ta, tb, Int64(m), Int64(n),
                                                       Int64(k), alpha, at, ta == 0 ? Int64(k) : Int64(m), bt, tb == 0 ? Int64(n) : Int64(k),
                                                       beta, &c, Int64(n)) == 0)
                        }
                        return c
                    }
                    let serial = run(1)
                    var expected = c0
                    fclf_sgemm_ref(ta, tb, Int64(m), Int64(n), Int64(k), alpha, at, ta == 0 ? Int64(k) : Int64(m), bt,
                                   tb == 0 ? Int64(n) : Int64(k), beta, &expected, Int64(n))
                    expectClose(serial, expected, atol: 2e-3, rtol: 1e-4, "\(name) \(m)x\(n)x\(k)")
                    #expect(run(2) == serial, "\(name) \(m)x\(n)x\(k) ta \(ta) tb \(tb): 2 threads changed the bits")
                }
            }
        }
    }

    @Test("fclf_sgemm runs the decided blocking; out-of-range blockings are refused and write nothing")
    func decidedAndRefused() {
        var b = GEMMBlocking.active
        let active = fclf_gemm_blocking(mc: Int64(b.mc), kc: Int64(b.kc), nc: Int64(b.nc))
        let (m, n, k) = (33, 97, 700)
        let a = randomArray(m * k, seed: 21), bm = randomArray(k * n, seed: 22)
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        fclf_sgemm(0, 0, Int64(m), Int64(n), Int64(k), 1, a, Int64(k), bm, Int64(n), 0, &c1, Int64(n))
        #expect(fclf_sgemm_blocked(fclf_isa_active(), active, 0, 0, Int64(m), Int64(n), Int64(k), 1, a, Int64(k), bm, Int64(n), 0, &c2, Int64(n)) == 0)
        #expect(c1 == c2)
        b.kc = 0
        var c3 = [Float](repeating: 7, count: m * n)
        for bad in [fclf_gemm_blocking(mc: 0, kc: 64, nc: 64), fclf_gemm_blocking(mc: 8, kc: 0, nc: 64),
                    fclf_gemm_blocking(mc: 8, kc: Int64(FCLF_GEMM_KC_MAX) + 1, nc: 64), fclf_gemm_blocking(mc: 8, kc: 64, nc: -1)] {
            #expect(fclf_sgemm_blocked(Int32(FCLF_ISA_SCALAR.rawValue), bad, 0, 0, Int64(m), Int64(n), Int64(k), 1, a, Int64(k), bm, Int64(n), 0, &c3, Int64(n)) == -1)
        }
        #expect(c3.allSatisfy { $0 == 7 })
    }

    @Test("convolution weights packed once: the same bits as packing per call (multi-block K, partial tiles, 1 and 2 threads, batch 1 and 5)")
    func convPrepacked() {
        // (c, oc, h): K = 288 (conv2), 576 (wide-bn's conv4: more than one K block when KC < 576), 45 with oc 13.
        for (c, oc, h) in [(32, 64, 13), (64, 64, 10), (5, 13, 9)] {
            for n in [1, 5] {
                let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(h), Int64(oc), 3, 3, 0)
                let count = Int(fclf_conv2d_packed_weights_size(s))
                #expect(count >= oc * c * 9, "\(c)->\(oc): packed size \(count)")
                let x = randomArray(n * c * h * h, seed: 31), w = randomArray(oc * c * 9, seed: 32, scale: 0.2), b = randomArray(oc, seed: 33)
                let wp = alignedFloats(count)
                defer { wp.deallocate() }
                fclf_conv2d_pack_weights(wp, w, s)
                let out = n * oc * Int(s.oh * s.ow)
                for threads in [1, 2] {
                    for relu: Int32 in [0, 1] {
                        var plain = [Float](repeating: .nan, count: out), packed = plain
                        withThreads(threads) {
                            fclf_conv2d_forward(&plain, nil, x, w, b, relu, s)
                            fclf_conv2d_forward_prepacked(&packed, nil, x, w, wp, b, relu, s)
                        }
                        #expect(plain.map(\.bitPattern) == packed.map(\.bitPattern), "\(c)->\(oc) n \(n), \(threads) threads, relu \(relu)")
                    }
                }
            }
        }
        // 'same' shapes the plane tiles take on AVX-512 and AVX2 (plane.c) pack in their layout: with col they read it, and
        // without col the GEMM from x must pack for itself, never read those weights as its panels (K = 400: more
        // than one K block; 12 channels: a partial block).
        for (c, oc, h, k) in [(16, 16, 20, 5), (16, 12, 19, 3), (8, 16, 28, 3)] {
            for n in [1, 3] {
                let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(h), Int64(oc), Int64(k), Int64(k), 1)
                let x = randomArray(n * c * h * h, seed: 34), w = randomArray(oc * c * k * k, seed: 35, scale: 0.2), b = randomArray(oc, seed: 36)
                let wp = alignedFloats(max(1, Int(fclf_conv2d_packed_weights_size(s))))
                defer { wp.deallocate() }
                fclf_conv2d_pack_weights(wp, w, s)
                let out = n * oc * Int(s.oh * s.ow)
                for withCol in [false, true] {
                    var col = [Float](repeating: 0, count: Int(fclf_conv2d_col_size(s)))
                    var plain = [Float](repeating: .nan, count: out), packed = plain
                    col.withUnsafeMutableBufferPointer { cp in
                        let colp = withCol ? cp.baseAddress : nil
                        fclf_conv2d_forward(&plain, colp, x, w, b, 1, s)
                        fclf_conv2d_forward_prepacked(&packed, colp, x, w, wp, b, 1, s)
                    }
                    #expect(plain.map(\.bitPattern) == packed.map(\.bitPattern), "same \(c)->\(oc) k\(k) n \(n), col \(withCol)")
                }
            }
        }
        // The direct path (K < 16) reads w as it is: nothing to pack.
        #expect(fclf_conv2d_packed_weights_size(fclf_conv2d_make_shape(1, 1, 28, 28, 32, 3, 3, 0)) == 0)
    }

    @Test("convolution forward (bias, ReLU, NCHW output whose tiles straddle images, several K blocks with A kept whole) gives the bits of im2col, a block-by-block product, + bias and ReLU")
    func convForwardAllKBlocksPerPanel() {
        // K = 128 x 9 = 1152: more than one K block under any variant's KC; P = 4 x 5 = 20, so a 32-column tile
        // holds parts of two or three images; oc 16 <= MC, and 16 x 1152 floats of A fit whole.
        let (n, c, h, w, oc) = (3, 128, 6, 7, 16)
        let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), 3, 3, 0)
        let P = Int(s.oh * s.ow), K = c * 9, NP = n * P
        let x = randomArray(n * c * h * w, seed: 61), wt = randomArray(oc * K, seed: 62, scale: 0.1), b = randomArray(oc, seed: 63)
        var col = [Float](repeating: 0, count: K * NP)
        for i in 0..<n { for ch in 0..<c { for ky in 0..<3 { for kx in 0..<3 { for oy in 0..<Int(s.oh) { for ox in 0..<Int(s.ow) {
            col[((ch * 3 + ky) * 3 + kx) * NP + i * P + oy * Int(s.ow) + ox] = x[((i * c + ch) * h + oy + ky) * w + ox + kx]
        } } } } } }
        let active = GEMMBlocking.active
        // MC 8 < oc: two blocks of rows, so the product runs block by block, with the forward's K blocks.
        var product = [Float](repeating: .nan, count: oc * NP)
        #expect(fclf_sgemm_blocked(fclf_isa_active(), fclf_gemm_blocking(mc: 8, kc: Int64(active.kc), nc: Int64(active.nc)), 0, 0,
                                   Int64(oc), Int64(NP), Int64(K), 1, wt, Int64(K), col, Int64(NP), 0, &product, Int64(NP)) == 0)
        for relu: Int32 in [0, 1] {
            var expected = [Float](repeating: 0, count: n * oc * P)
            for i in 0..<n { for o in 0..<oc { for p in 0..<P {
                let r = product[o * NP + i * P + p] + b[o]
                expected[(i * oc + o) * P + p] = relu == 1 ? (r > 0 ? r : 0) : r
            } } }
            for threads in [1, 2] {
                var y = [Float](repeating: .nan, count: n * oc * P)
                withThreads(threads) { fclf_conv2d_forward(&y, nil, x, wt, b, relu, s) }
                #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "relu \(relu), \(threads) threads")
            }
        }
    }

    @Test("the short-M row path (M < 4: one image through a dense layer) gives the bits of the same rows in a tiled product, every ISA",
          arguments: kernelISAs)
    func shortRowsMatchTiles(_ variant: KernelISA) {
        // N = 128 (dense1: one strip), 200 (a strip and a partial one), 10; K = 1600 and 600 (several K blocks),
        // 40 (one); A transposed or not; beta 0 and 0.5 (C's earlier values enter the first block only). A third of
        // A's entries are 0 or -0 as after a ReLU and a pooling (the rows skip them), one run of 20 zeros spans
        // a 16-entry group, and one entry is NaN, which must reach C as the tiles carry it.
        for (n, k) in [(128, 1600), (200, 600), (10, 40)] { for ta: Int32 in [0, 1] { for beta: Float in [0, 0.5] {
            let m = 8
            var a = randomArray(m * k, seed: 51)
            for i in a.indices where a[i] < 0 && i % 4 != 0 { a[i] = i % 3 == 0 ? -0.0 : 0 }
            for i in 0..<20 { a[(3 * k + 5 + i) % a.count] = 0 }
            a[(2 * k + 7) % a.count] = .nan
            let b = randomArray(k * n, seed: 52), c0 = randomArray(m * n, seed: 53)
            let lda = ta == 0 ? k : m
            var tiled = c0
            fclf_sgemm_isa(variant.raw, ta, 0, Int64(m), Int64(n), Int64(k), 0.75, a, Int64(lda), b, Int64(n), beta, &tiled, Int64(n))
            for rows in 1...3 {
                // rows 2, 3, ... of the tiled product: A starts at row 2 (a column offset when transposed)
                let first = 2
                var short = Array(c0[(first * n)..<((first + rows) * n)])
                a.withUnsafeBufferPointer { ap in
                    let a0 = ap.baseAddress! + (ta == 0 ? first * k : first)
                    fclf_sgemm_isa(variant.raw, ta, 0, Int64(rows), Int64(n), Int64(k), 0.75, a0, Int64(lda), b, Int64(n), beta, &short, Int64(n))
                }
                #expect(short.map(\.bitPattern) == tiled[(first * n)..<((first + rows) * n)].map(\.bitPattern),
                        "\(variant) M \(rows) N \(n) K \(k) ta \(ta) beta \(beta)")
            }
        } } }
    }

    @Test("a row of C gets the same bits whatever tile it lands in: M = 1-20, 32 and 128 against the same rows of a 132-row product (AVX2's pair kernel splits 6 + 1-3 rows into two tiles), every ISA",
          arguments: kernelISAs)
    func rowsIndependentOfTiling(_ variant: KernelISA) {
        // N = 40: two whole 16-column panels and a partial one (AVX2), a partial 32-column one (AVX-512); K = 700:
        // two or three K blocks; beta 0 and 0.5 (C's earlier values enter the first block only).
        let big = 132, n = 40, k = 700
        let b = randomArray(k * n, seed: 62)
        for ta: Int32 in [0, 1] { for beta: Float in [0, 0.5] {
            let lda = ta == 0 ? k : big
            let a = randomArray(big * k, seed: 61), c0 = randomArray(big * n, seed: 63)
            var whole = c0
            fclf_sgemm_isa(variant.raw, ta, 0, Int64(big), Int64(n), Int64(k), 0.75, a, Int64(lda), b, Int64(n), beta, &whole, Int64(n))
            for m in Array(1...20) + [32, 128] {
                var part = Array(c0[0..<(m * n)])
                fclf_sgemm_isa(variant.raw, ta, 0, Int64(m), Int64(n), Int64(k), 0.75, a, Int64(lda), b, Int64(n), beta, &part, Int64(n))
                let first = (0..<(m * n)).first { part[$0].bitPattern != whole[$0].bitPattern }
                #expect(first == nil, "\(variant) M \(m) ta \(ta) beta \(beta): row \((first ?? 0) / n) differs")
            }
        } }
    }

    @Test("a stored B read in place gives the packed panels' bits: M = 4-64 against the same rows of a 132-row product, B's rows on 64-byte lines (read in place up to M = 64) and 3 floats longer than N (up to 32), N = 40 and 300 at K = 700 (A packed whole), 70 at K = 3,000 (block by block from M = 24 on), beta 0 and 0.5, 1 and 2 threads, every ISA",
          arguments: kernelISAs)
    func storedBInPlace(_ variant: KernelISA) {
        // 132 rows take the packed path. The short products read B's whole panels where they lie and pack only the
        // partial last one (N = 40: AVX2 2 + 8 columns, AVX-512 1 + 8; N = 70: 4 + 6, 2 + 6); N = 300 runs past the
        // first chunk of columns the driver streams (MC 96 leaves 64 or 128 columns beside A). B's rows lie either on
        // 64-byte lines (ldb a multiple of 16 in aligned memory) or, with ldb = N + 3, at every alignment. KC 64 keeps
        // a K block of B within 80 KB, under half of any L2 (the span the driver reads in place), so the path does
        // not depend on this machine's caches (FCLF_GEMM_IN_PLACE_ROWS=0 in the environment would turn it off: then
        // both sides are packed).
        let big = 132, blocking = fclf_gemm_blocking(mc: 96, kc: 64, nc: 4096)
        for (n, k) in [(40, 700), (300, 700), (70, 3000)] {
            for ldb in [(n + 15) / 16 * 16 + 16, n + 3] {
                let a = randomArray(big * k, seed: 81), values = randomArray(k * ldb, seed: 82), c0 = randomArray(big * n, seed: 83)
                let b = alignedFloats(k * ldb)
                defer { b.deallocate() }
                b.update(from: values, count: values.count)
                func product(_ m: Int, _ c: inout [Float], beta: Float) -> Int32 {
                    fclf_sgemm_blocked(variant.raw, blocking, 0, 0, Int64(m), Int64(n), Int64(k), 0.75, a, Int64(k), b, Int64(ldb), beta,
                                       &c, Int64(n))
                }
                for beta: Float in [0, 0.5] {
                    // on one thread, so that no part of the reference is short enough to read B in place (2 threads
                    // may split its rows)
                    var whole = c0
                    #expect(withThreads(1) { product(big, &whole, beta: beta) } == 0)
                    for threads in [1, 2] { for m in [4, 5, 6, 7, 8, 9, 13, 16, 24, 32, 48, 63, 64] {
                        var part = Array(c0[0..<(m * n)])
                        #expect(withThreads(threads) { product(m, &part, beta: beta) } == 0)
                        let first = (0..<(m * n)).first { part[$0].bitPattern != whole[$0].bitPattern }
                        #expect(first == nil,
                                "\(variant) M \(m) N \(n) ldb \(ldb) K \(k) beta \(beta) threads \(threads): element \(first ?? 0) differs")
                    } }
                }
            }
        }
    }

    @Test("a convolution's bias and ReLU reach each output channel with the same bits whatever row tile it lands in: oc 7, 8, 9, 14 and 32 against the first channels of oc 36, every ISA",
          arguments: kernelISAs)
    func convChannelsIndependentOfTiling(_ variant: KernelISA) {
        // 16 channels, 3x3, no padding: the GEMM from x (K = 144). oc 36 is whole AVX2 tiles; oc 7, 8, 9, 14 and 32
        // end in AVX2's pair kernel, whose second half starts the bias at a row inside the tile. P = 4 x 5: column
        // tiles straddle the two images (those take the buffered path, the others the pair).
        let (n, c, h, w, big) = (2, 16, 6, 7, 36)
        let K = c * 9
        let x = randomArray(n * c * h * w, seed: 71), wt = randomArray(big * K, seed: 72, scale: 0.1), b = randomArray(big, seed: 73)
        let shape = { (oc: Int) in fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), 3, 3, 0) }
        let P = Int(shape(big).oh * shape(big).ow)
        for relu: Int32 in [0, 1] {
            var whole = [Float](repeating: .nan, count: n * big * P)
            fclf_conv2d_forward_isa(variant.raw, &whole, nil, x, wt, b, relu, shape(big))
            for oc in [7, 8, 9, 14, 32] {
                var y = [Float](repeating: .nan, count: n * oc * P)
                fclf_conv2d_forward_isa(variant.raw, &y, nil, x, wt, b, relu, shape(oc))
                let differing = (0..<(n * oc * P)).first { j in
                    let (i, r) = j.quotientAndRemainder(dividingBy: oc * P)
                    return y[j].bitPattern != whole[i * big * P + r].bitPattern
                }
                #expect(differing == nil, "\(variant) oc \(oc) relu \(relu): channel \(((differing ?? 0) % (oc * P)) / P) differs")
            }
        }
    }

    @Test("dense weights packed once: the same bits as packing per call (the short-M rows too), 1 and 2 threads")
    func densePrepacked() {
        for (inSize, outSize) in [(1600, 128), (1024, 256), (128, 10), (70, 33)] {
            let count = Int(fclf_dense_packed_weights_size(Int64(inSize), Int64(outSize)))
            #expect(count >= inSize * outSize)
            let w = randomArray(inSize * outSize, seed: 41, scale: 0.1), b = randomArray(outSize, seed: 42)
            let wp = alignedFloats(count)
            defer { wp.deallocate() }
            fclf_dense_pack_weights(wp, w, Int64(inSize), Int64(outSize))
            for n in [1, 3, 4, 37, 64] {
                let x = randomArray(n * inSize, seed: 43)
                for threads in [1, 2] {
                    var plain = [Float](repeating: .nan, count: n * outSize), packed = plain
                    withThreads(threads) {
                        fclf_dense_forward(&plain, x, w, b, Int64(n), Int64(inSize), Int64(outSize), 1)
                        fclf_dense_forward_prepacked(&packed, x, w, wp, b, Int64(n), Int64(inSize), Int64(outSize), 1)
                    }
                    #expect(plain.map(\.bitPattern) == packed.map(\.bitPattern), "\(inSize)->\(outSize) n \(n), \(threads) threads")
                }
            }
        }
    }
}
