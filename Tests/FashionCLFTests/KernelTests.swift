// Every optimised kernel against its naive reference, on random shapes and on sizes below, equal to and
// above each micro-kernel tile (MR 8/6/4, NR 32/16/8) and the vector widths; with 1 and 2 threads.
// Kernels with per-ISA code run on every variant this CPU has, through their *_isa entry points (the
// variant is an argument passed down to the OpenMP workers, so concurrent tests cannot disturb each other).
import CKernels
@testable import FashionCLF
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct GemmCase: CustomStringConvertible, Sendable {
    var m, n, k: Int
    var description: String { "\(m)x\(n)x\(k)" }
}

let gemmShapes: [GemmCase] = [
    GemmCase(m: 1, n: 1, k: 1), GemmCase(m: 5, n: 7, k: 3), GemmCase(m: 8, n: 32, k: 16),
    GemmCase(m: 7, n: 31, k: 17), GemmCase(m: 9, n: 33, k: 1), GemmCase(m: 6, n: 16, k: 8),
    GemmCase(m: 13, n: 47, k: 300), GemmCase(m: 97, n: 65, k: 257), GemmCase(m: 64, n: 121, k: 288),
    GemmCase(m: 32, n: 128, k: 1600), GemmCase(m: 130, n: 2050, k: 40),
]

/// A kernel variant (fclf_isa), named in test output.
struct KernelISA: CustomTestStringConvertible, Sendable {
    var raw: Int32
    var testDescription: String { String(cString: fclf_isa_name(raw)) }
}

/// The variants this CPU can run; the others are reported once and left out.
let kernelISAs: [KernelISA] = [FCLF_ISA_SCALAR, FCLF_ISA_AVX2, FCLF_ISA_AVX512F].compactMap { isa in
    let raw = Int32(isa.rawValue)
    guard fclf_isa_supported(raw) != 0 else {
        print("skip: \(String(cString: fclf_isa_name(raw))) is not supported on this CPU")
        return nil
    }
    return KernelISA(raw: raw)
}

@Suite("Kernels match their naive references")
struct KernelTests {
    @Test("sgemm, every transpose, alpha/beta, every ISA the CPU has, 1 and 2 threads", arguments: gemmShapes)
    func sgemm(_ s: GemmCase) {
        for variant in kernelISAs {
            let isa = variant.raw
            for ta: Int32 in [0, 1] { for tb: Int32 in [0, 1] { for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1.5)] {
                let lda = (ta == 0 ? s.k : s.m) + 3, ldb = (tb == 0 ? s.n : s.k) + 1, ldc = s.n + 2
                let a = randomArray((ta == 0 ? s.m : s.k) * lda, seed: 1)
                let b = randomArray((tb == 0 ? s.k : s.n) * ldb, seed: 2)
                let c0 = randomArray(s.m * ldc, seed: 3)
                var expected = c0
                fclf_sgemm_ref(ta, tb, Int64(s.m), Int64(s.n), Int64(s.k), alpha, a, Int64(lda), b, Int64(ldb), beta, &expected, Int64(ldc))
                var results: [[Float]] = []
                for threads in [1, 2] {
                    var c = c0
                    withThreads(threads) {
                        fclf_sgemm_isa(isa, ta, tb, Int64(s.m), Int64(s.n), Int64(s.k), alpha, a, Int64(lda), b, Int64(ldb), beta, &c, Int64(ldc))
                    }
                    results.append(c)
                }
                let tag = "\(s) \(String(cString: fclf_isa_name(isa))) ta=\(ta) tb=\(tb) beta=\(beta)"
                // float32 sums of k products of values in [-1, 1): error grows like sqrt(k) ulps.
                expectClose(results[0], expected, atol: 1e-5 * Double(s.k).squareRoot() * 4, rtol: 1e-5, tag)
                #expect(results[0] == results[1], "\(tag): 1 and 2 threads differ")
            } } }
        }
    }

    @Test("conv2d forward and backward (GEMM and small-K paths, fused ReLU) against the direct loops, every ISA",
          arguments: kernelISAs, [false, true])
    func conv2d(_ variant: KernelISA, same: Bool) {
        let isa = variant.raw
        // (5, 3, 7, 9, 10, 3) packs from x with short pixel runs, partial tiles and a 27-row A. Even kernels (2 and
        // 4, packed from x; 2 with K = 4, the small-K path): with 'same' all of their padding (or, for 4, the
        // larger part) is below and right, where packers that tested only pad_t and pad_l read past x.
        // With 'same', (2, 6, 20, 19, 12, 3), res-bn's (2, 16, 28, 28, 16, 3) and the even kernels (2, 8, 18, 18, 8, 2)
        // (all padding below and right) and (2, 4, 17, 19, 6, 4) take the plane tiles of AVX-512 and AVX2
        // (CKernels/conv/plane.c, plane_avx2.c; 12 channels: a partial AVX-512 block, 6: a partial AVX2 group and
        // dx's partial block; 20 x 19: tiles that end inside a row; 28 x 28: rows of 3 x 8 + 4 pixels in AVX2's
        // weight gradient).
        for (n, c, h, w, oc, k) in [(1, 1, 5, 7, 3, 3), (3, 3, 9, 6, 5, 3), (2, 4, 8, 8, 17, 5), (4, 32, 13, 13, 64, 3), (3, 1, 28, 28, 32, 3),
                                    (5, 3, 7, 9, 10, 3), (2, 8, 6, 7, 9, 2), (2, 2, 7, 8, 5, 4), (2, 1, 6, 5, 4, 2),
                                    (2, 6, 20, 19, 12, 3), (2, 16, 28, 28, 16, 3), (2, 8, 18, 18, 8, 2), (2, 4, 17, 19, 6, 4)] {
            for relu: Int32 in [0, 1] { for wantDx in [true, false] {
                let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), Int64(k), Int64(k), same ? 1 : 0)
                let x = randomArray(n * c * h * w, seed: 10), wt = randomArray(oc * c * k * k, seed: 11)
                let b = randomArray(oc, seed: 12)
                let outCount = n * oc * Int(s.oh * s.ow)
                let dy = randomArray(outCount, seed: 13)
                var yRef = [Float](repeating: 0, count: outCount)
                fclf_conv2d_forward_ref(&yRef, x, wt, b, s)
                var dz = dy
                if relu != 0 {
                    for i in 0..<outCount where yRef[i] <= 0 { yRef[i] = 0; dz[i] = 0 }
                }
                var dxRef = [Float](repeating: 0, count: x.count), dwRef = [Float](repeating: 0.25, count: wt.count)
                var dbRef = [Float](repeating: 0.5, count: oc)
                fclf_conv2d_backward_ref(&dxRef, &dwRef, &dbRef, dz, x, wt, s)
                var outputs: [[[Float]]] = []
                for threads in [1, 2] {
                    // Every buffer carries a guard tail that no kernel may write (vector stores past a row end).
                    let guardTail = [Float](repeating: -12345, count: 64)
                    var y = [Float](repeating: .nan, count: outCount) + guardTail
                    var col = [Float](repeating: 0, count: Int(fclf_conv2d_col_size(s))) + guardTail
                    var dcol = [Float](repeating: 0, count: Int(fclf_conv2d_dcol_size(s))) + guardTail
                    var tmp = [Float](repeating: 0, count: Int(fclf_conv2d_tmp_size(s))) + guardTail
                    var dx = [Float](repeating: .nan, count: x.count) + guardTail
                    var dw = [Float](repeating: 0.25, count: wt.count) + guardTail
                    var db = [Float](repeating: 0.5, count: oc) + guardTail
                    defer {
                        for (name, buffer) in [("y", y), ("col", col), ("dcol", dcol), ("tmp", tmp), ("dx", dx), ("dw", dw), ("db", db)] {
                            #expect(Array(buffer.suffix(guardTail.count)) == guardTail, "conv \(variant) n\(n) c\(c) \(h)x\(w) oc\(oc) k\(k): written past the end of \(name)")
                        }
                    }
                    withThreads(threads) {
                        fclf_conv2d_forward_isa(isa, &y, &col, x, wt, b, relu, s)
                        if wantDx {
                            fclf_conv2d_backward_isa(isa, &dx, &dw, &db, &dcol, &tmp, dy, y, col, x, wt, relu, s)
                        } else {
                            fclf_conv2d_backward_isa(isa, nil, &dw, &db, &dcol, &tmp, dy, y, col, x, wt, relu, s)
                        }
                    }
                    let tag = "conv \(variant) \(n)x\(c)x\(h)x\(w) -> \(oc), k\(k), \(same ? "same" : "valid"), relu \(relu), dx \(wantDx), \(threads) threads"
                    let tol = 1e-5 * Double(c * k * k).squareRoot() * 4
                    let (yOut, dxOut) = (Array(y.prefix(outCount)), Array(dx.prefix(x.count)))
                    let (dwOut, dbOut) = (Array(dw.prefix(wt.count)), Array(db.prefix(oc)))
                    expectClose(yOut, yRef, atol: tol, rtol: 1e-5, "\(tag): y")
                    if wantDx { expectClose(dxOut, dxRef, atol: tol, rtol: 1e-5, "\(tag): dx") }
                    expectClose(dwOut, dwRef, atol: 1e-5 * Double(n * Int(s.oh * s.ow)).squareRoot() * 4, rtol: 1e-5, "\(tag): dw (accumulated)")
                    expectClose(dbOut, dbRef, atol: 1e-4, rtol: 1e-5, "\(tag): db (accumulated)")
                    outputs.append([yOut, wantDx ? dxOut : [], dwOut, dbOut])
                }
                #expect(outputs[0] == outputs[1], "conv \(variant): results depend on the thread count")
                // Shapes whose products pack straight from x leave col alone (it may be unallocated there),
                // and give the bits of an explicit im2col matrix through fclf_sgemm, then + bias and ReLU
                // (the GEMM stores its tiles in NCHW with bias and ReLU applied; this checks that path).
                if fclf_conv2d_uses_col(s) == 0 {
                    var y2 = [Float](repeating: .nan, count: outCount)
                    var untouched = [Float](repeating: -7, count: 4)
                    fclf_conv2d_forward_isa(isa, &y2, &untouched, x, wt, b, relu, s)
                    #expect(y2 == outputs[0][0] && untouched == [-7, -7, -7, -7], "packing from x: n\(n) c\(c) k\(k) same \(same)")
                    let (oh, ow, P, K) = (Int(s.oh), Int(s.ow), Int(s.oh * s.ow), c * k * k)
                    let pad = same ? (k - 1) / 2 : 0
                    var col = [Float](repeating: 0, count: K * n * P)
                    for i in 0..<n { for ci in 0..<c { for ki in 0..<k { for kj in 0..<k { for oy in 0..<oh { for ox in 0..<ow {
                        let (iy, ix) = (oy + ki - pad, ox + kj - pad)
                        guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                        col[((ci * k + ki) * k + kj) * n * P + i * P + oy * ow + ox] = x[((i * c + ci) * h + iy) * w + ix]
                    } } } } } }
                    var product = [Float](repeating: 0, count: oc * n * P)
                    fclf_sgemm_isa(isa, 0, 0, Int64(oc), Int64(n * P), Int64(K), 1, wt, Int64(K), col, Int64(n * P), 0, &product, Int64(n * P))
                    var y3 = [Float](repeating: 0, count: outCount)
                    for i in 0..<n { for o in 0..<oc { for p in 0..<P {
                        let v = product[o * n * P + i * P + p] + b[o]
                        y3[(i * oc + o) * P + p] = relu != 0 ? (v > 0 ? v : 0) : v
                    } } }
                    #expect(y2 == y3, "\(variant): NCHW epilogue differs from explicit im2col + GEMM + bias: n\(n) c\(c) k\(k) same \(same)")
                }
                // Padded shapes that pack from x run their products over x copied into zero-framed planes in col;
                // without col they pack from x with a bounds check per tap. Both must give the same bits, in the
                // output and in the weight gradient that reads the frame back.
                if same && c * k * k >= 16 {
                    #expect(fclf_conv2d_uses_col(s) != 0, "padded \(n)x\(c)x\(h)x\(w) k\(k) asks for no col")
                    var y2 = [Float](repeating: .nan, count: outCount), dw2 = [Float](repeating: 0.25, count: wt.count)
                    var db2 = [Float](repeating: 0.5, count: oc), dcol2 = [Float](repeating: 0, count: Int(fclf_conv2d_dcol_size(s)))
                    var tmp2 = [Float](repeating: 0, count: Int(fclf_conv2d_tmp_size(s)))
                    fclf_conv2d_forward_isa(isa, &y2, nil, x, wt, b, relu, s)
                    fclf_conv2d_backward_isa(isa, nil, &dw2, &db2, &dcol2, &tmp2, dy, y2, nil, x, wt, relu, s)
                    if fclf_conv2d_plane_taken_isa(isa, s) != 0 {
                        // the plane-tile path (with col) and the GEMM (without) round the same sums in another order
                        expectClose(y2, outputs[0][0], atol: 1e-5 * Double(c * k * k).squareRoot() * 4, rtol: 1e-5, "\(variant) n\(n) c\(c) k\(k): GEMM from x against row tiles")
                        expectClose(dw2, outputs[0][2], atol: 1e-5 * Double(n * Int(s.oh * s.ow)).squareRoot() * 4, rtol: 1e-5, "\(variant) n\(n) c\(c) k\(k): weight gradients")
                    } else {
                        #expect(y2.map(\.bitPattern) == outputs[0][0].map(\.bitPattern), "\(variant) n\(n) c\(c) k\(k): framed forward differs from bounds-checked packing")
                        #expect(dw2.map(\.bitPattern) == outputs[0][2].map(\.bitPattern), "\(variant) n\(n) c\(c) k\(k): framed weight gradient differs")
                    }
                }
            } }
        }
    }

    @Test("a 'same' convolution's weight gradient takes no term from a tap that reads no pixel (an Inf in x's last column leaves the taps left of it finite), every ISA",
          arguments: kernelISAs)
    func convGradNoTermsOutsidePixels(_ variant: KernelISA) {
        // A 16 -> 16 'same' shape as in res-bn's first stage, which the plane tiles take on AVX-512 and AVX2:
        // AVX-512's flat walk passes positions that are not pixels, where a tap (v = 0) can read x's last column,
        // and AVX2's row walk must read no position past a row's pixels; 0 x Inf must not land in dw there.
        let (n, c, h, oc) = (1, 16, 20, 16)
        let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(h), Int64(oc), 3, 3, 1)
        if variant.raw != Int32(FCLF_ISA_SCALAR.rawValue) {
            #expect(fclf_conv2d_plane_taken_isa(variant.raw, s) != 0, "the plane tiles no longer take this shape")
        }
        var x = randomArray(n * c * h * h, seed: 70)
        x[5 * h + h - 1] = .infinity // channel 0, row 5, last column
        let wt = randomArray(oc * c * 9, seed: 71), dy = randomArray(n * oc * h * h, seed: 72)
        var y = [Float](repeating: 0, count: n * oc * h * h), col = [Float](repeating: 0, count: Int(fclf_conv2d_col_size(s)))
        var dcol = [Float](repeating: 0, count: Int(fclf_conv2d_dcol_size(s))), tmp = [Float](repeating: 0, count: Int(fclf_conv2d_tmp_size(s)))
        var dw = [Float](repeating: 0, count: wt.count), db = [Float](repeating: 0, count: oc)
        fclf_conv2d_forward_isa(variant.raw, &y, &col, x, wt, nil, 0, s)
        fclf_conv2d_backward_isa(variant.raw, nil, &dw, &db, &dcol, &tmp, dy, y, col, x, wt, 0, s)
        // channel 0's taps (u, v): v = 2 reads the last column for the pixel left of it, v = 1 under itself; v = 0
        // only reads it from a position past the row's end, which is no pixel
        for o in 0..<oc { for u in 0..<3 {
            #expect(dw[o * c * 9 + u * 3].isFinite, "\(variant) o\(o) tap (0, \(u), 0): \(dw[o * c * 9 + u * 3])")
            #expect(!dw[o * c * 9 + u * 3 + 1].isFinite, "\(variant) o\(o) tap (0, \(u), 1) should see the Inf")
        } }
    }

    @Test("the plane tiles of AVX2 and AVX-512 give the same outputs and dx, bit for bit (each sum: the bias, then one FMA per tap in order), and weight gradients to rounding",
          .enabled(if: fclf_isa_supported(Int32(FCLF_ISA_AVX512F.rawValue)) != 0, "needs a CPU with AVX-512 to run both variants"))
    func planeTilesAgreeAcrossVariants() {
        let (avx2, avx512) = (Int32(FCLF_ISA_AVX2.rawValue), Int32(FCLF_ISA_AVX512F.rawValue))
        // res-bn's first-stage shape; 6 -> 12 channels on 20 x 19 (a partial AVX-512 block, dx's partial block of 6,
        // tiles that end inside a row, rows of 19 = 2 x 8 + 3 pixels)
        for (n, c, h, w, oc) in [(3, 16, 28, 28, 16), (2, 6, 20, 19, 12)] { for relu: Int32 in [0, 1] {
            let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), 3, 3, 1)
            #expect(fclf_conv2d_plane_taken_isa(avx2, s) != 0 && fclf_conv2d_plane_taken_isa(avx512, s) != 0)
            let x = randomArray(n * c * h * w, seed: 80), wt = randomArray(oc * c * 9, seed: 81), b = randomArray(oc, seed: 82)
            let outCount = n * oc * h * w
            let dy = randomArray(outCount, seed: 83)
            var results: [[[Float]]] = []
            for isa in [avx2, avx512] {
                var y = [Float](repeating: .nan, count: outCount), col = [Float](repeating: 0, count: Int(fclf_conv2d_col_size(s)))
                var dcol = [Float](repeating: 0, count: Int(fclf_conv2d_dcol_size(s))), tmp = [Float](repeating: 0, count: Int(fclf_conv2d_tmp_size(s)))
                var dx = [Float](repeating: .nan, count: x.count), dw = [Float](repeating: 0, count: wt.count)
                var db = [Float](repeating: 0, count: oc)
                fclf_conv2d_forward_isa(isa, &y, &col, x, wt, b, relu, s)
                fclf_conv2d_backward_isa(isa, &dx, &dw, &db, &dcol, &tmp, dy, y, col, x, wt, relu, s)
                results.append([y, dx, dw, db])
            }
            let tag = "\(n)x\(c)x\(h)x\(w) -> \(oc), relu \(relu)"
            #expect(results[0][0].map(\.bitPattern) == results[1][0].map(\.bitPattern), "\(tag): outputs differ")
            #expect(results[0][1].map(\.bitPattern) == results[1][1].map(\.bitPattern), "\(tag): dx differs")
            // 8-lane against 16-lane sums over the batch's pixels
            expectClose(results[0][2], results[1][2], atol: 1e-5 * Double(n * h * w).squareRoot() * 4, rtol: 1e-5, "\(tag): dw")
            #expect(results[0][3] == results[1][3], "\(tag): db (the same per-plane sums) differs")
        } }
    }

    @Test("dense forward and backward with and without ReLU against GEMM references and the dense reference, every ISA",
          arguments: kernelISAs)
    func dense(_ variant: KernelISA) {
        let isa = variant.raw
        for (n, input, output) in [(1, 13, 7), (32, 1600, 128), (5, 64, 10), (3, 40, 33)] { for relu: Int32 in [0, 1] {
            let x = randomArray(n * input, seed: 60), w = randomArray(input * output, seed: 61), b = randomArray(output, seed: 62)
            let dy = randomArray(n * output, seed: 63)
            var yRef = [Float](repeating: 0, count: n * output)
            fclf_sgemm_ref(0, 0, Int64(n), Int64(output), Int64(input), 1, x, Int64(input), w, Int64(output), 0, &yRef, Int64(output))
            var dz = dy
            for i in 0..<n { for j in 0..<output {
                yRef[i * output + j] += b[j]
                if relu != 0 && yRef[i * output + j] <= 0 { yRef[i * output + j] = 0; dz[i * output + j] = 0 }
            } }
            var dwRef = [Float](repeating: 1, count: input * output), dxRef = [Float](repeating: 0, count: n * input)
            fclf_sgemm_ref(1, 0, Int64(input), Int64(output), Int64(n), 1, x, Int64(input), dz, Int64(output), 1, &dwRef, Int64(output))
            fclf_sgemm_ref(0, 1, Int64(n), Int64(input), Int64(output), 1, dz, Int64(output), w, Int64(output), 0, &dxRef, Int64(input))
            let dbRef = (0..<output).map { j in 1 + (0..<n).reduce(Float(0)) { $0 + dz[$1 * output + j] } }
            let tag = "dense \(variant) \(n)x\(input)->\(output) relu \(relu)"
            // The dense reference itself agrees with the GEMM-built expectations.
            var yDense = [Float](repeating: .nan, count: n * output)
            fclf_dense_forward_ref(&yDense, x, w, b, Int64(n), Int64(input), Int64(output), relu)
            expectClose(yDense, yRef, atol: 1e-4, rtol: 1e-5, "\(tag): y reference")
            var dxDense = [Float](repeating: .nan, count: n * input), dwDense = [Float](repeating: 1, count: input * output)
            var dbDense = [Float](repeating: 1, count: output)
            var results: [[Float]] = []
            for threads in [1, 2] {
                let guardTail = [Float](repeating: -12345, count: 64)
                var y = [Float](repeating: .nan, count: n * output) + guardTail, scratch = y
                var dw = [Float](repeating: 1, count: input * output) + guardTail
                var dx = [Float](repeating: .nan, count: n * input) + guardTail
                var db = [Float](repeating: 1, count: output) + guardTail
                withThreads(threads) {
                    fclf_dense_forward_isa(isa, &y, x, w, b, Int64(n), Int64(input), Int64(output), relu)
                    fclf_dense_backward_isa(isa, &dx, &dw, &db, &scratch, dy, x, y, w, Int64(n), Int64(input), Int64(output), relu)
                }
                for (name, buffer) in [("y", y), ("dz", scratch), ("dx", dx), ("dw", dw), ("db", db)] {
                    #expect(Array(buffer.suffix(guardTail.count)) == guardTail, "\(tag): written past the end of \(name)")
                }
                let (yOut, dxOut) = (Array(y.prefix(n * output)), Array(dx.prefix(n * input)))
                let (dwOut, dbOut) = (Array(dw.prefix(input * output)), Array(db.prefix(output)))
                if results.isEmpty {
                    fclf_dense_backward_ref(&dxDense, &dwDense, &dbDense, dy, x, yOut, w, Int64(n), Int64(input), Int64(output), relu)
                }
                expectClose(yOut, yRef, atol: 1e-4, rtol: 1e-5, "\(tag): y")
                expectClose(dxOut, dxRef, atol: 1e-4, rtol: 1e-5, "\(tag): dx")
                expectClose(dwOut, dwRef, atol: 1e-4, rtol: 1e-5, "\(tag): dw")
                expectClose(dbOut, dbRef, atol: 1e-4, rtol: 1e-5, "\(tag): db")
                expectClose(dxOut, dxDense, atol: 1e-4, rtol: 1e-5, "\(tag): dx against the dense reference")
                expectClose(dwOut, dwDense, atol: 1e-4, rtol: 1e-5, "\(tag): dw against the dense reference")
                expectClose(dbOut, dbDense, atol: 1e-4, rtol: 1e-5, "\(tag): db against the dense reference")
                results.append(yOut + dxOut + dwOut + dbOut)
            }
            #expect(results[0] == results[1], "\(tag): results depend on the thread count")
        } }
    }

    @Test("2x2 max pooling forward against the reference; backward routes to the winner, as its reference, every ISA",
          arguments: kernelISAs)
    func maxPool(_ variant: KernelISA) {
        let isa = variant.raw
        // Planes up to 32 columns (the AVX-512 dense adjoint: one or two masked stores per row; 27 and 32 fill
        // part and all of the second) and wider (33, whose last column no window reaches, and 40: the scatter);
        // 100 x 26 x 26 is above the threshold for threads.
        // 17 columns: 8 windows fill a vector exactly and the odd last column still has to be cleared (the AVX2
        // adjoint's first version left it unwritten).
        for (planes, h, w) in [(1, 2, 2), (3, 5, 7), (6, 26, 26), (64, 11, 11), (2, 5, 27), (2, 4, 32), (2, 4, 33), (2, 9, 40),
                               (100, 26, 26), (2, 5, 17), (2, 4, 17)] {
            let x = randomArray(planes * h * w, seed: 20)
            let count = planes * (h / 2) * (w / 2)
            let tag = "pool \(variant) \(planes)x\(h)x\(w)"
            let guardTail = [Float](repeating: -12345, count: 64)
            var y = [Float](repeating: 0, count: count) + guardTail, yRef = [Float](repeating: 0, count: count)
            var argmax = [Int32](repeating: -1, count: count) + [Int32](repeating: -7, count: 64)
            fclf_maxpool2x2_forward_isa(isa, &y, &argmax, x, Int64(planes), Int64(h), Int64(w))
            #expect(Array(y.suffix(64)) == guardTail && Array(argmax.suffix(64)) == [Int32](repeating: -7, count: 64),
                    "\(tag): written past the end of y or argmax")
            y.removeLast(64)
            argmax.removeLast(64)
            fclf_maxpool2x2_forward_ref(&yRef, x, Int64(planes), Int64(h), Int64(w))
            #expect(y == yRef, "\(tag): forward")
            var yNoArgmax = [Float](repeating: .nan, count: count)
            fclf_maxpool2x2_forward_isa(isa, &yNoArgmax, nil, x, Int64(planes), Int64(h), Int64(w))
            #expect(yNoArgmax == y, "\(tag): forward without argmax")
            let dy = randomArray(count, seed: 21)
            var dx = [Float](repeating: .nan, count: x.count) + guardTail
            fclf_maxpool2x2_backward_isa(isa, &dx, dy, argmax, nil, Int64(planes), Int64(h), Int64(w))
            #expect(Array(dx.suffix(64)) == guardTail, "\(tag): written past the end of dx")
            dx.removeLast(64)
            // Each window's gradient lands on the position holding the window's maximum; the rest are 0.
            var expected = [Float](repeating: 0, count: x.count)
            for p in 0..<planes { for oy in 0..<h / 2 { for ox in 0..<w / 2 {
                var best = (p * h + 2 * oy) * w + 2 * ox
                for (dy_, dx_) in [(0, 1), (1, 0), (1, 1)] {
                    let i = (p * h + 2 * oy + dy_) * w + 2 * ox + dx_
                    if x[i] > x[best] { best = i }
                }
                expected[best] = dy[(p * (h / 2) + oy) * (w / 2) + ox]
            } } }
            #expect(dx == expected, "\(tag): backward")
            var dxRef = [Float](repeating: .nan, count: x.count)
            fclf_maxpool2x2_backward_ref(&dxRef, dy, x, nil, Int64(planes), Int64(h), Int64(w))
            #expect(dx == dxRef, "\(tag): backward against the reference")
            // With the forward output given, windows whose maximum is <= 0 (a ReLU before would have
            // zeroed their gradient) pass nothing; the others are unchanged.
            var masked = [Float](repeating: .nan, count: x.count)
            fclf_maxpool2x2_backward_isa(isa, &masked, dy, argmax, y, Int64(planes), Int64(h), Int64(w))
            var expectedMasked = expected
            for o in 0..<count where !(y[o] > 0) { expectedMasked[Int(argmax[o]) + (o / ((h / 2) * (w / 2))) * h * w] = 0 }
            #expect(masked == expectedMasked, "\(tag): backward with the ReLU mask")
            #expect(expectedMasked != expected || !y.contains { $0 <= 0 }, "\(tag): the mask case was not exercised")
            fclf_maxpool2x2_backward_ref(&dxRef, dy, x, y, Int64(planes), Int64(h), Int64(w))
            #expect(masked == dxRef, "\(tag): backward with the ReLU mask against the reference")
            // Every plane has one owner: the thread count changes nothing.
            var y2 = [Float](repeating: 0, count: count), a2 = [Int32](repeating: -1, count: count)
            var masked2 = [Float](repeating: .nan, count: x.count)
            withThreads(2) {
                fclf_maxpool2x2_forward_isa(isa, &y2, &a2, x, Int64(planes), Int64(h), Int64(w))
                fclf_maxpool2x2_backward_isa(isa, &masked2, dy, a2, y2, Int64(planes), Int64(h), Int64(w))
            }
            #expect(y2 == y && a2 == argmax && masked2 == masked, "\(tag): 2 threads")
        }
    }

    // One variant (plain C, no per-ISA code): run once.
    @Test("softmax cross-entropy (single variant): value, gradient and probabilities against the reference; stable for huge logits")
    func softmaxXent() {
        let n = 5, k = 10
        var z = randomArray(n * k, seed: 30, scale: 4)
        z[3] = 1e4; z[k + 2] = -1e4  // exp would overflow without log-sum-exp
        let labels: [Int32] = [3, 2, 0, 9, 5]
        var d = [Float](repeating: 0, count: n * k), p = d
        let sum = fclf_softmax_xent(&d, &p, z, labels, Int64(n), Int64(k))
        let zd = z.map(Double.init)
        #expect(sum.isFinite)
        #expect(abs(sum / Double(n) - xentRef(zd, labels: labels, k: k)) < 1e-9 * max(1, abs(sum)))
        let numeric = numericGradient(zd, h: 1e-4) { xentRef($0, labels: labels, k: k) }
        expectClose(d, numeric.map(Float.init), atol: 1e-6, rtol: 1e-4, "dlogits")
        for i in 0..<n { #expect(abs(p[i * k..<(i + 1) * k].reduce(0, +) - 1) < 1e-5) }
        var dRef = [Float](repeating: .nan, count: n * k), pRef = dRef
        let sumRef = fclf_softmax_xent_ref(&dRef, &pRef, z, labels, Int64(n), Int64(k))
        #expect(abs(sum - sumRef) < 1e-9 * max(1, abs(sumRef)), "loss \(sum) against the reference \(sumRef)")
        expectClose(d, dRef, atol: 1e-7, rtol: 1e-5, "dlogits against the reference")
        expectClose(p, pRef, atol: 1e-7, rtol: 1e-5, "probs against the reference")
        // Without the optional outputs, the same loss; inference's softmax gives the loss's probabilities bit for bit.
        #expect(fclf_softmax_xent(nil, nil, z, labels, Int64(n), Int64(k)) == sum)
        var probs = [Float](repeating: .nan, count: n * k), probsRef = probs
        fclf_softmax_forward(&probs, z, Int64(n), Int64(k))
        #expect(probs == p, "softmax forward and the loss's probabilities differ")
        fclf_softmax_forward_ref(&probsRef, z, Int64(n), Int64(k))
        expectClose(probs, probsRef, atol: 1e-7, rtol: 1e-5, "softmax forward against the reference")
    }

    // One variant (its loop is the naive form, cloned per x86-64 level by the loader): run once.
    @Test("ReLU forward and backward (single variant): the select, in place too, NaN and -0 to +0")
    func relu() {
        for count in [1, 15, 16, 17, 1001] {
            var x = randomArray(count, seed: 100)
            x[0] = .nan
            if count > 2 { x[1] = -0.0; x[2] = 0 }
            let expected = x.map { $0 > 0 ? $0 : 0 }
            var y = [Float](repeating: .nan, count: count)
            fclf_relu_forward(&y, x, Int64(count))
            #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "relu forward \(count)")
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { fclf_relu_forward($0.baseAddress, $0.baseAddress, Int64(count)) }
            #expect(inPlace.map(\.bitPattern) == expected.map(\.bitPattern), "relu forward in place \(count)")
            let dy = randomArray(count, seed: 101)
            let dxExpected = (0..<count).map { y[$0] > 0 ? dy[$0] : 0 }
            var dx = [Float](repeating: .nan, count: count)
            fclf_relu_backward(&dx, dy, y, Int64(count))
            #expect(dx == dxExpected, "relu backward \(count)")
            var dxInPlace = dy
            dxInPlace.withUnsafeMutableBufferPointer { fclf_relu_backward($0.baseAddress, $0.baseAddress, y, Int64(count)) }
            #expect(dxInPlace == dxExpected, "relu backward in place \(count)")
        }
    }

    @Test("the residual add (single variant): y = a + b bit for bit, in place on either operand, nothing past count written")
    func add() {
        for count in [1, 15, 16, 17, 1001] {
            let a = randomArray(count, seed: 110), b = randomArray(count, seed: 111)
            let expected = zip(a, b).map { $0 + $1 }
            var y = [Float](repeating: .nan, count: count + 8)  // 8 guard floats after the output
            fclf_add(&y, a, b, Int64(count))
            #expect(Array(y[..<count]).map(\.bitPattern) == expected.map(\.bitPattern), "add \(count)")
            let guardIntact = y[count...].allSatisfy { $0.isNaN }
            #expect(guardIntact, "add \(count) wrote past its output")
            var inA = a, inB = b
            inA.withUnsafeMutableBufferPointer { fclf_add($0.baseAddress, $0.baseAddress, b, Int64(count)) }
            inB.withUnsafeMutableBufferPointer { fclf_add($0.baseAddress, a, $0.baseAddress, Int64(count)) }
            #expect(inA == expected && inB == expected, "add in place \(count)")
        }
    }

    // One variant each: their loops are cloned per x86-64 level by the loader (the CPU's choice, not fclf_isa),
    // element by element, so every clone gives the same bits.
    @Test("Adam and SGD-momentum updates (single variant) against a Double transcription of their formulas and their references")
    func optimisers() {
        let count = 37
        var p = randomArray(count, seed: 40), m = [Float](repeating: 0, count: count), v = m
        var pd = p.map(Double.init), md = [Double](repeating: 0, count: count), vd = md
        for t in 1...5 {
            let g = randomArray(count, seed: 41 + UInt64(t))
            fclf_adam_update(&p, &m, &v, g, Int64(count), 1e-2, 0.9, 0.999, 1e-7, Int64(t))
            for i in 0..<count {
                md[i] = 0.9 * md[i] + 0.1 * Double(g[i]); vd[i] = 0.999 * vd[i] + 0.001 * Double(g[i]) * Double(g[i])
                let mh = md[i] / (1 - pow(0.9, Double(t))), vh = vd[i] / (1 - pow(0.999, Double(t)))
                pd[i] -= 1e-2 * mh / (vh.squareRoot() + 1e-7)
            }
        }
        expectClose(p.map(Double.init), pd, atol: 1e-6, rtol: 1e-5, "adam")
        var q = randomArray(count, seed: 50), buf = [Float](repeating: 0, count: count)
        var qd = q.map(Double.init), bd = [Double](repeating: 0, count: count)
        for t in 1...5 {
            let g = randomArray(count, seed: 51 + UInt64(t))
            fclf_sgd_momentum_update(&q, &buf, g, Int64(count), 0.1, 0.9)
            for i in 0..<count { bd[i] = 0.9 * bd[i] + Double(g[i]); qd[i] -= 0.1 * bd[i] }
        }
        expectClose(q.map(Double.init), qd, atol: 1e-6, rtol: 1e-5, "sgd momentum")
        // Step by step against the C references, from the same state; and Adam on enough parameters for threads
        // (65536 and up) gives the same bits on 1 and 2.
        for count in [37, 70_001] {
            var p1 = randomArray(count, seed: 80), m1 = randomArray(count, seed: 81, scale: 0.1)
            var v1 = randomArray(count, seed: 82, scale: 0.01).map { $0 * $0 }
            var (pR, mR, vR) = (p1, m1, v1)
            var (p2, m2, v2) = (p1, m1, v1)
            var b1 = randomArray(count, seed: 83, scale: 0.1), q1 = randomArray(count, seed: 84)
            var (bR, qR) = (b1, q1)
            for t in 1...3 {
                let g = randomArray(count, seed: 90 + UInt64(t))
                withThreads(1) { fclf_adam_update(&p1, &m1, &v1, g, Int64(count), 1e-3, 0.9, 0.999, 1e-7, Int64(t)) }
                withThreads(2) { fclf_adam_update(&p2, &m2, &v2, g, Int64(count), 1e-3, 0.9, 0.999, 1e-7, Int64(t)) }
                fclf_adam_update_ref(&pR, &mR, &vR, g, Int64(count), 1e-3, 0.9, 0.999, 1e-7, Int64(t))
                fclf_sgd_momentum_update(&q1, &b1, g, Int64(count), 0.05, 0.9)
                fclf_sgd_momentum_update_ref(&qR, &bR, g, Int64(count), 0.05, 0.9)
            }
            #expect(p1 == p2 && m1 == m2 && v1 == v2, "adam \(count): 1 and 2 threads differ")
            expectClose(m1, mR, atol: 1e-7, rtol: 1e-5, "adam \(count): m against the reference")
            expectClose(v1, vR, atol: 1e-9, rtol: 1e-5, "adam \(count): v against the reference")
            expectClose(p1, pR, atol: 1e-6, rtol: 1e-6, "adam \(count): p against the reference")
            expectClose(b1, bR, atol: 1e-6, rtol: 1e-5, "sgd \(count): buf against the reference")
            expectClose(q1, qR, atol: 1e-6, rtol: 1e-5, "sgd \(count): p against the reference")
        }
    }
}
