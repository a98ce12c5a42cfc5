// fclf-bench: our figures for the comparison table, one JSON object per line on stdout (a readable line per
// item on stderr). Every GEMM is checked against OpenBLAS before it is timed.
//
//   fclf-bench [all|peak|gemm|train|predict|frames|blocking|mc|scaling|conv] [--threads N] [--quick] [--model FILE.fclf]
//              [--only TEXT] [--m-sweep]
//
// predict times the seed CNN's architecture (random weights) unless --model names a model file.
//
// frames: single images at 10, 30, 100 and 1000 calls per second, as a till's camera sends them, and a batch
// of 64 ten times a second: latency and the share of a core the process used, idle gaps included; not part
// of "all".
//
// blocking: our GEMM on every shape under several KC values (and this machine's MC and NC), the KCs taking
// turns round by round so that drift on a shared machine hits them alike; not part of "all".
// mc: the squares 1024 and 2048 under MC values from a quarter to seven eighths of L2 (this machine's KC, NC),
// in turns likewise; not part of "all".
//
// conv: a convolution's forward and backward (weight and input gradients) with 'same' padding against the
// same product with 'valid' padding (the input two pixels larger): equal FLOPs, so the ratio is what the
// padding costs. Each output is checked against the reference convolution first; not part of "all".
//
// scaling: the seed CNN's training steps (batch 32 and 128) and batch prediction only, for a table over thread
// counts (Benchmarks/peers/scaling.py); each item's digest (FNV-1a over the weights after the timed steps, or
// over the batch's probabilities) must be the same at every thread count.
//
// gemm --m-sweep: dense1's product in the fast network (N 128, K 3,072) at M = 8 to 256 instead of the table's
// rows: where the driver reads a stored B in place rather than packing it (up to 64 rows; run it again with
// FCLF_GEMM_IN_PLACE_ROWS=0 for the packed path).
//
// Protocol: warm-up, then the median and p10/p90 of at least 20 timed runs. Threads default to 2.
import CBenchSupport
import CKernels
import COpenBLAS
import FashionCLF

#if canImport(Glibc)
import Glibc
#endif

var args = Array(CommandLine.arguments.dropFirst())
let quick = args.contains("--quick")
var threads = 2
if let i = args.firstIndex(of: "--threads"), i + 1 < args.count, let t = Int(args[i + 1]) { threads = t }
var modelPath: String? = nil
// --only TEXT: the GEMM rows (gemm, blocking) whose name contains TEXT, for timing one shape before and after a change.
var onlyShape: String? = nil
if let i = args.firstIndex(of: "--only"), i + 1 < args.count { onlyShape = args[i + 1]; args.removeSubrange(i...i + 1) }
let mSweep = args.contains("--m-sweep")
if let i = args.firstIndex(of: "--model"), i + 1 < args.count { modelPath = args[i + 1]; args.removeSubrange(i...i + 1) }
let mode = args.first { !$0.hasPrefix("--") && Int($0) == nil } ?? "all"
fclf_set_num_threads(Int32(threads))
openblas_set_num_threads(Int32(threads))
let runs = quick ? 5 : 21

struct Stats { var median, p10, p90: Double }
func stats(_ xs: [Double]) -> Stats {
    let s = xs.sorted()
    return Stats(median: s[s.count / 2], p10: s[s.count / 10], p90: s[(s.count * 9) / 10])
}

func emit(_ fields: [(String, String)]) {
    print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
    Console.flush()
}
func str(_ s: String) -> String { Text.json(s) }
func num(_ x: Double) -> String { Text.json(x) }

/// Times `body` `runs` times after `warmup` calls; seconds per call.
func time(warmup: Int = 3, runs: Int = runs, _ body: () -> Void) -> Stats {
    for _ in 0..<warmup { body() }
    var xs: [Double] = []
    for _ in 0..<runs {
        let s = monotonicSeconds()
        body()
        xs.append(monotonicSeconds() - s)
    }
    return stats(xs)
}

// MARK: - peak

func measurePeak() -> Double {
    let peak = fclf_bench_fma_peak(Int32(threads), quick ? 0.3 : 1.0)
    emit([("item", str("fma peak")), ("threads", "\(threads)"), ("gflops", num(peak))])
    Console.error("FMA peak, \(threads) threads: \(Text.fixed(peak, 1)) GFLOP/s")
    return peak
}

// MARK: - GEMM

struct Shape { var name: String; var ta, tb: Bool; var m, n, k: Int }

func gemmShapes(quickSubset: Bool = quick) -> [Shape] {
    var shapes = [Shape(name: "conv2 forward b1", ta: false, tb: false, m: 64, n: 121, k: 288),
                  Shape(name: "square 512", ta: false, tb: false, m: 512, n: 512, k: 512),
                  Shape(name: "square 1024", ta: false, tb: false, m: 1024, n: 1024, k: 1024),
                  Shape(name: "square 2048", ta: false, tb: false, m: 2048, n: 2048, k: 2048)]
    for b in [32, 128] {
        shapes += [Shape(name: "conv2 forward b\(b)", ta: false, tb: false, m: 64, n: 121 * b, k: 288),
                   Shape(name: "conv2 weight grad b\(b)", ta: false, tb: true, m: 64, n: 288, k: 121 * b),
                   Shape(name: "conv2 weight grad transposed b\(b)", ta: false, tb: true, m: 288, n: 64, k: 121 * b),
                   Shape(name: "conv2 input grad b\(b)", ta: true, tb: false, m: 288, n: 121 * b, k: 64),
                   Shape(name: "dense1 forward b\(b)", ta: false, tb: false, m: b, n: 128, k: 1600)]
        // The `fast` preset's network (cnn3w-bn): conv2 on 14x14 planes (12x12 out; the same shapes as cnn3-bn's,
        // which these rows were named after until recipe 7), conv3 64 -> 192 on 6x6 (4x4 out, K = 576), dense1
        // from 3072. Its conv1 (K = 9) is a direct convolution, not a GEMM.
        shapes += [Shape(name: "cnn3w-bn conv2 forward b\(b)", ta: false, tb: false, m: 64, n: 144 * b, k: 288),
                   Shape(name: "cnn3w-bn conv2 weight grad b\(b)", ta: false, tb: true, m: 64, n: 288, k: 144 * b),
                   Shape(name: "cnn3w-bn conv2 input grad b\(b)", ta: true, tb: false, m: 288, n: 144 * b, k: 64),
                   Shape(name: "cnn3w-bn conv3 forward b\(b)", ta: false, tb: false, m: 192, n: 16 * b, k: 576),
                   Shape(name: "cnn3w-bn conv3 weight grad b\(b)", ta: false, tb: true, m: 192, n: 576, k: 16 * b),
                   Shape(name: "cnn3w-bn conv3 input grad b\(b)", ta: true, tb: false, m: 576, n: 16 * b, k: 192),
                   Shape(name: "cnn3w-bn dense1 forward b\(b)", ta: false, tb: false, m: b, n: 128, k: 3072)]
    }
    if mSweep {
        shapes = [8, 16, 32, 48, 64, 96, 128, 192, 256].map { Shape(name: "m-sweep m\($0)", ta: false, tb: false, m: $0, n: 128, k: 3072) }
    }
    if quickSubset { shapes = Array(shapes.prefix(1)) + shapes.filter { $0.name.contains("b32") } }
    if let only = onlyShape { shapes = shapes.filter { $0.name.contains(only) } }
    return shapes
}

/// The GEMM rows' warm-up per library and shape (see gemm(peak:)).
let warmSeconds = 0.05

func gemm(peak: Double) {
    let shapes = gemmShapes()
    var rng = SplitMix64(seed: 5)
    for s in shapes {
        let (rowsA, colsA) = s.ta ? (s.k, s.m) : (s.m, s.k)
        let (rowsB, colsB) = s.tb ? (s.n, s.k) : (s.k, s.n)
        let av = (0..<rowsA * colsA).map { _ in rng.uniform(1) }, bv = (0..<rowsB * colsB).map { _ in rng.uniform(1) }
        // The sweep's operands lie 64-byte aligned, as a layer's weights and activations do (Buffer); the table's
        // rows keep arrays as they come, for both libraries alike.
        let ab = Buffer<Float>(capacity: mSweep ? av.count : 1), bb = Buffer<Float>(capacity: mSweep ? bv.count : 1)
        if mSweep { ab.pointer.update(from: av, count: av.count); bb.pointer.update(from: bv, count: bv.count) }
        func operands(_ body: (UnsafePointer<Float>, UnsafePointer<Float>) -> Void) {
            if mSweep { body(ab.pointer, bb.pointer); return }
            av.withUnsafeBufferPointer { ap in bv.withUnsafeBufferPointer { bp in body(ap.baseAddress!, bp.baseAddress!) } }
        }
        var ours = [Float](repeating: 0, count: s.m * s.n), ref = ours
        let ta: Int32 = s.ta ? 1 : 0, tb: Int32 = s.tb ? 1 : 0
        func runOurs() {
            operands { a, b in fclf_sgemm(ta, tb, Int64(s.m), Int64(s.n), Int64(s.k), 1, a, Int64(colsA), b, Int64(colsB), 0, &ours, Int64(s.n)) }
        }
        func runBLAS() {
            operands { a, b in
                cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, blasint(s.m), blasint(s.n),
                            blasint(s.k), 1, a, blasint(colsA), b, blasint(colsB), 0, &ref, blasint(s.n))
            }
        }
        runOurs(); runBLAS()
        let worst = zip(ours, ref).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        guard worst < 1e-3 else { Console.error("\(s.name): ours differs from OpenBLAS by \(worst)"); exit(1) }
        let flops = 2.0 * Double(s.m) * Double(s.n) * Double(s.k)
        // Ours, then OpenBLAS, back to back, each in a block with its own warm-up: alternating call by call
        // let each library's idle worker threads spin on the second core while the other one ran (at
        // 64x121x288 on 2 threads that halved our figure, 48 against 88 GFLOP/s on 1 thread).
        // Before each block, 250 ms for the other library's idle threads to stop spinning and park (libomp's
        // KMP_BLOCKTIME is 200 ms; OpenBLAS's thread timeout is shorter).
        // Each block's warm-up runs for WARM_SECONDS, not a few calls: woken from sleep, a library's worker thread
        // may start on the calling thread's core and share it until the scheduler moves it (milliseconds),
        // which three calls of the 64 x 121 x 288 product (25 us each) did not outlast: ours measured 44-52
        // GFLOP/s there on 2 threads, 83 on one, and 145-154 with its threads bound to cores.
        var tOurs: [Double] = [], tBLAS: [Double] = []
        func warm(_ body: () -> Void) {
            let t0 = monotonicSeconds()
            repeat { body() } while monotonicSeconds() - t0 < warmSeconds
        }
        usleep(250_000)
        warm(runOurs)
        for _ in 0..<runs { let t0 = monotonicSeconds(); runOurs(); tOurs.append(monotonicSeconds() - t0) }
        usleep(250_000)
        warm(runBLAS)
        for _ in 0..<runs { let t0 = monotonicSeconds(); runBLAS(); tBLAS.append(monotonicSeconds() - t0) }
        let o = stats(tOurs), r = stats(tBLAS)
        let g = flops / o.median / 1e9, gr = flops / r.median / 1e9
        emit([("item", str("gemm " + s.name)), ("m", "\(s.m)"), ("n", "\(s.n)"), ("k", "\(s.k)"), ("ours_gflops", num(g)),
              ("ours_p10_gflops", num(flops / o.p90 / 1e9)), ("ours_p90_gflops", num(flops / o.p10 / 1e9)),
              ("openblas_gflops", num(gr)), ("ratio", num(g / gr)), ("peak_fraction", num(g / peak))])
        Console.error("gemm \(s.name) (\(s.m)x\(s.n)x\(s.k)): ours \(Text.fixed(g, 1)) GFLOP/s [p10-p90 \(Text.fixed(flops / o.p90 / 1e9, 1))-\(Text.fixed(flops / o.p10 / 1e9, 1))], OpenBLAS \(Text.fixed(gr, 1)), ratio \(Text.fixed(g / gr, 2)), \(Text.fixed(100 * g / peak, 1))% of peak")
    }
}

// MARK: - KC sweep

/// GFLOP/s of our GEMM on shape s under each blocking, the blockings taking turns round by round so that drift
/// on a shared machine hits them alike; each round's figure is the mean of `calls` calls, after one untimed call
/// per blocking in the first round.
func timeBlockings(_ s: Shape, _ blockings: [fclf_gemm_blocking], rounds: Int, calls: Int, rng: inout SplitMix64) -> [Double] {
    let (rowsA, colsA) = s.ta ? (s.k, s.m) : (s.m, s.k)
    let (rowsB, colsB) = s.tb ? (s.n, s.k) : (s.k, s.n)
    let a = (0..<rowsA * colsA).map { _ in rng.uniform(1) }, b = (0..<rowsB * colsB).map { _ in rng.uniform(1) }
    var c = [Float](repeating: 0, count: s.m * s.n)
    let ta: Int32 = s.ta ? 1 : 0, tb: Int32 = s.tb ? 1 : 0
    let flops = 2.0 * Double(s.m) * Double(s.n) * Double(s.k)
    var times = [[Double]](repeating: [], count: blockings.count)
    for round in 0..<rounds {
        for (i, blk) in blockings.enumerated() {
            func run() { _ = fclf_sgemm_blocked(fclf_isa_active(), blk, ta, tb, Int64(s.m), Int64(s.n), Int64(s.k), 1, a, Int64(colsA), b, Int64(colsB), 0, &c, Int64(s.n)) }
            if round == 0 { run() }
            let t0 = monotonicSeconds()
            for _ in 0..<calls { run() }
            times[i].append((monotonicSeconds() - t0) / Double(calls))
        }
    }
    return times.map { flops / stats($0).median / 1e9 }
}

func blockingSweep(peak: Double) {
    let active = GEMMBlocking.active
    let kcs: [Int64] = [128, 160, 192, 256, 288, 320, 384, 512]
    let blockings = kcs.map { fclf_gemm_blocking(mc: Int64(active.mc), kc: $0, nc: Int64(active.nc)) }
    var rng = SplitMix64(seed: 5)
    for s in gemmShapes() {
        let g = timeBlockings(s, blockings, rounds: quick ? 5 : 15, calls: 2, rng: &rng)
        emit([("item", str("kc sweep " + s.name))] + zip(kcs, g).map { ("kc\($0)", num($1)) })
        Console.error("\(s.name) (\(s.m)x\(s.n)x\(s.k)), GFLOP/s by KC: " + zip(kcs, g).map { "\($0): \(Text.fixed($1, 1))" }.joined(separator: ", "))
    }
}

// MARK: - MC sweep

/// GFLOP/s of the squares 1024 and 2048 by MC (KC and NC as derived): A's packed block takes a quarter to
/// seven eighths of L2. MC moves no bits, so this is free to tune; the rule in blocking.c gives the 7/8 row.
func mcSweep() {
    let active = GEMMBlocking.active
    let fractions = [0.25, 0.375, 0.5, 0.625, 0.75, 0.875]
    let mcs = fractions.map { f in max(48, Int64(f * Double(active.l2Bytes) / Double(4 * active.kc)) / 48 * 48) }
    let blockings = mcs.map { fclf_gemm_blocking(mc: $0, kc: Int64(active.kc), nc: Int64(active.nc)) }
    var rng = SplitMix64(seed: 5)
    for s in gemmShapes(quickSubset: false) where s.name.hasPrefix("square") && s.m >= 1024 {  // --quick: fewer rounds
        let g = timeBlockings(s, blockings, rounds: quick ? 3 : 7, calls: 1, rng: &rng)
        emit([("item", str("mc sweep " + s.name))] + zip(mcs, g).map { ("mc\($0)", num($1)) })
        Console.error("\(s.name), GFLOP/s by MC (kc \(active.kc)): " + zip(zip(mcs, fractions), g).map { "\($0.0) (\(Text.fixed($0.1 * 100, 1))% of L2): \(Text.fixed($1, 1))" }.joined(separator: ", "))
    }
}

// MARK: - convolution padding

/// GFLOP/s of one convolution's forward and of its backward with the input gradient, ReLU on.
func convPass(_ s: fclf_conv2d_shape, rng: inout SplitMix64) -> (forward: Double, backward: Double) {
    let (n, c, h, w, oc, k) = (Int(s.n), Int(s.c), Int(s.h), Int(s.w), Int(s.oc), Int(s.kh))
    let x = (0..<n * c * h * w).map { _ in rng.uniform(1) }, wt = (0..<oc * c * k * k).map { _ in rng.uniform(0.1) }
    let b = (0..<oc).map { _ in rng.uniform(0.1) }
    let out = n * oc * Int(s.oh * s.ow)
    let dy = (0..<out).map { _ in rng.uniform(1) }
    var y = [Float](repeating: 0, count: out), ref = y
    var col = [Float](repeating: 0, count: fclf_conv2d_uses_col(s) != 0 ? Int(fclf_conv2d_col_size(s)) : 1)
    var dcol = [Float](repeating: 0, count: Int(fclf_conv2d_dcol_size(s))), tmp = [Float](repeating: 0, count: Int(fclf_conv2d_tmp_size(s)))
    var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: wt.count), db = [Float](repeating: 0, count: oc)
    fclf_conv2d_forward(&y, &col, x, wt, b, 0, s)
    fclf_conv2d_forward_ref(&ref, x, wt, b, s)
    let worst = zip(y, ref).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
    guard worst < 1e-3 else { Console.error("conv \(n)x\(c)x\(h)x\(w): differs from the reference by \(worst)"); exit(1) }
    let flops = 2.0 * Double(out) * Double(c * k * k)
    let f = time { fclf_conv2d_forward(&y, &col, x, wt, b, 1, s) }
    let g = time { fclf_conv2d_backward(&dx, &dw, &db, &dcol, &tmp, dy, y, col, x, wt, 1, s) }
    return (flops / f.median / 1e9, 2 * flops / g.median / 1e9)
}

func convPadding() {
    var rng = SplitMix64(seed: 9)
    // (input channels, output channels, output size): the seed CNN's conv2, and a 32-channel layer at full
    // resolution, the second layer of a network that keeps 28 x 28 with 'same' padding.
    for (c, oc, size) in [(32, 64, 11), (32, 32, 28)] {
        for batch in quick ? [32] : [32, 128] {
            let same = convPass(fclf_conv2d_make_shape(Int64(batch), Int64(c), Int64(size), Int64(size), Int64(oc), 3, 3, 1), rng: &rng)
            let valid = convPass(fclf_conv2d_make_shape(Int64(batch), Int64(c), Int64(size + 2), Int64(size + 2), Int64(oc), 3, 3, 0), rng: &rng)
            let name = "conv \(c)->\(oc) 3x3 \(size)x\(size) b\(batch)"
            emit([("item", str(name)), ("same_forward_gflops", num(same.forward)), ("valid_forward_gflops", num(valid.forward)),
                  ("same_backward_gflops", num(same.backward)), ("valid_backward_gflops", num(valid.backward))])
            Console.error("\(name): forward same \(Text.fixed(same.forward, 1)) / valid \(Text.fixed(valid.forward, 1)) GFLOP/s (\(Text.fixed(same.forward / valid.forward, 2))x), backward same \(Text.fixed(same.backward, 1)) / valid \(Text.fixed(valid.backward, 1)) (\(Text.fixed(same.backward / valid.backward, 2))x)")
        }
    }
}

// MARK: - training step

/// FNV-1a over the bits of `count` floats: equal digests mean bitwise-equal results.
func digest(_ p: UnsafePointer<Float>, _ count: Int, into h: inout UInt64) {
    for i in 0..<count {
        h = (h ^ UInt64(p[i].bitPattern)) &* 0x100_0000_01b3
    }
}
func digestString(_ h: UInt64) -> String { str(String(h, radix: 16)) }

/// A training step's FLOPs per image, from the architecture: the convolutions' and dense layers' forward
/// multiply-adds x 2, three times (forward, input gradient, weight gradient), less the first layer's input
/// gradient, which nothing needs. BatchNorm, ReLU, pooling and dropout are element-wise work, not counted.
/// (The seed CNN: 15.4 MFLOP; the MLP: 0.45 MFLOP.)
func trainingFLOPs(_ kind: ModelKind) -> Double {
    var shape = ModelKind.imageShape, macs = 0.0, first: Double?
    for spec in kind.specs {
        let out = try! spec.outputShape(shape).get()  // the named architectures chain by construction
        var m = 0.0
        switch spec {
        case .conv2d(let ic, let oc, let k, _, _): m = Double(ic * oc * k * k * out.h * out.w)
        case .dense(let i, let o, _): m = Double(i * o)
        default: break
        }
        if m > 0 && first == nil { first = m }
        macs += m
        shape = out
    }
    return 6 * macs - 2 * (first ?? 0)
}

func trainStep(_ kind: ModelKind, batch: Int, peak: Double) {
    let net = kind.build(seed: 1)
    var config = TrainConfig()
    config.batchSize = batch
    let trainer = Trainer(model: net, config: config)
    var rng = SplitMix64(seed: 3)
    let count = batch * 8
    let data = LabeledImages(count: count, rows: 28, cols: 28, pixels: (0..<count * 784).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
                             labels: (0..<count).map { UInt8($0 % 10) })
    // One "run" = one pass of 8 steps over the synthetic set, reported per step.
    let t = time(warmup: 2) { _ = trainer.trainEpoch(data) }
    let perStep = t.median / 8
    let imagesPerSecond = Double(batch) / perStep
    let flopsPerImage = trainingFLOPs(kind)
    // The same number of steps ran at every thread count, so the weights must match bit for bit.
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for p in net.parameters { digest(p.value, p.count, into: &h) }
    emit([("item", str("train \(kind.rawValue) b\(batch)")), ("images_per_second", num(imagesPerSecond)), ("digest", digestString(h)),
          ("step_ms", num(perStep * 1e3)), ("flops_per_image", num(flopsPerImage)), ("step_p10_ms", num(t.p10 / 8 * 1e3)), ("step_p90_ms", num(t.p90 / 8 * 1e3)),
          ("peak_fraction", num(imagesPerSecond * flopsPerImage / 1e9 / peak))])
    Console.error("train \(kind.rawValue) batch \(batch): \(Int(imagesPerSecond)) images/s, step \(Text.fixed(perStep * 1e3, 3)) ms, \(Text.fixed(100 * imagesPerSecond * flopsPerImage / 1e9 / peak, 1))% of peak")
}

// MARK: - prediction

/// The test set's images (random ones without the data set) and the classifier predict and frames time:
/// --model's file, else the seed CNN's architecture with random weights.
func predictionInputs() -> (images: [UInt8], classifier: Classifier) {
    let directory = FashionMNIST.resolveDirectory(nil)
    var images: [UInt8]
    if let test = try? IDX.load(images: directory + "/t10k-images-idx3-ubyte.gz", labels: directory + "/t10k-labels-idx1-ubyte.gz") {
        images = test.withPixels { Array($0) }
    } else {
        var rng = SplitMix64(seed: 9)
        images = (0..<10000 * 784).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }
    if let modelPath {
        do { return (images, try Classifier(contentsOf: modelPath)) } catch { Console.error("fclf-bench: \(error)"); exit(1) }
    }
    return (images, Classifier(ModelKind.cnn.build(seed: 1)))
}

func predict(peak: Double, latency: Bool = true) {
    let (images, classifier) = predictionInputs()
    var probs = [Float](repeating: 0, count: 10 * 10000)
    let n = images.count / 784
    images.withUnsafeBufferPointer { px in
        var lat: [Double] = []
        let helpedBefore = fclf_assist_helped()
        for i in 0..<(latency ? (quick ? 2000 : 11000) : 0) {
            let s = monotonicSeconds()
            probs.withUnsafeMutableBufferPointer { try! classifier.predict(px.baseAddress! + (i % n) * 784, count: 1, probabilities: $0.baseAddress, labels: nil) }
            if i >= 1000 || quick { lat.append(monotonicSeconds() - s) }
        }
        if latency {
            lat.sort()
            let p50 = lat[lat.count / 2], p99 = lat[lat.count * 99 / 100]
            // the tasks of one image that the second core took (CKernels/assist.c), on average
            let helped = Double(fclf_assist_helped() - helpedBefore) / Double(quick ? 2000 : 11000)
            emit([("item", str("predict 1 image")), ("p50_us", num(p50 * 1e6)), ("p99_us", num(p99 * 1e6)),
                  ("helper_tasks", num(helped))])
            Console.error("predict 1 image: p50 \(Text.fixed(p50 * 1e6, 1)) us, p99 \(Text.fixed(p99 * 1e6, 1)) us, \(Text.fixed(helped, 1)) tasks per image on the helper thread")
        }
        let t = time(warmup: 1, runs: quick ? 3 : 7) {
            probs.withUnsafeMutableBufferPointer { try! classifier.predict(px.baseAddress!, count: n, probabilities: $0.baseAddress, labels: nil) }
        }
        let rate = Double(n) / t.median
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        probs.withUnsafeBufferPointer { digest($0.baseAddress!, $0.count, into: &h) }
        emit([("item", str("predict batch \(n)")), ("images_per_second", num(rate)), ("digest", digestString(h)),
              ("peak_fraction", num(rate * 5.26e6 / 1e9 / peak))])
        Console.error("predict batch of \(n): \(Int(rate)) images/s")
    }
}

// MARK: - camera frames

/// Single images at a camera's pace (each call started on a fixed schedule): the latency's p50 and p99, and
/// the share of one core the process used over the period, idle gaps included (getrusage): what a till
/// running other programs pays for the calls and for any thread that spins waiting for the next one.
func frames() {
    let (images, classifier) = predictionInputs()
    let n = images.count / 784
    var probs = [Float](repeating: 0, count: 10 * 64)
    images.withUnsafeBufferPointer { px in
        for i in 0..<200 { probs.withUnsafeMutableBufferPointer { try! classifier.predict(px.baseAddress! + (i % n) * 784, count: 1, probabilities: $0.baseAddress, labels: nil) } }
        // One image per call at four paces, then a batch of 64 (the OpenMP team's path) ten times a second.
        for (count, hz) in [(1, 10.0), (1, 30.0), (1, 100.0), (1, 1000.0), (64, 10.0)] {
            let calls = Int(hz * (quick ? 1 : 3)), period = 1 / hz
            usleep(300_000)  // the last item's spinning threads (up to libomp's 200 ms) asleep before counting
            var lat: [Double] = []
            var r0 = rusage(), r1 = rusage()
            getrusage(RUSAGE_SELF.rawValue, &r0)
            let start = monotonicSeconds()
            for i in 0..<calls {
                let due = start + Double(i) * period
                while monotonicSeconds() < due {
                    var ts = timespec(tv_sec: 0, tv_nsec: Int(max(0, due - monotonicSeconds()) * 1e9))
                    nanosleep(&ts, nil)
                }
                let s = monotonicSeconds()
                probs.withUnsafeMutableBufferPointer { try! classifier.predict(px.baseAddress! + (i * count % (n - count)) * 784, count: count, probabilities: $0.baseAddress, labels: nil) }
                lat.append(monotonicSeconds() - s)
            }
            let end = start + Double(calls) * period
            while monotonicSeconds() < end { var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000); nanosleep(&ts, nil) }
            getrusage(RUSAGE_SELF.rawValue, &r1)
            let cpu = { (r: rusage) in Double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + Double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6 }
            let share = (cpu(r1) - cpu(r0)) / (monotonicSeconds() - start)
            lat.sort()
            let p50 = lat[lat.count / 2], p99 = lat[lat.count * 99 / 100]
            let what = count == 1 ? "one image" : "\(count) images"
            emit([("item", str("frames \(count) at \(Int(hz)) Hz")), ("p50_us", num(p50 * 1e6)), ("p99_us", num(p99 * 1e6)), ("cpu_share", num(share))])
            Console.error("\(what) at \(Int(hz)) Hz: p50 \(Text.fixed(p50 * 1e6, 1)) us, p99 \(Text.fixed(p99 * 1e6, 1)) us, \(Text.fixed(100 * share, 1))% of a core used")
        }
    }
}

let blocking = GEMMBlocking.active
emit([("item", str("machine")), ("threads", "\(threads)"), ("isa", str(String(cString: fclf_isa_name(fclf_isa_active())))),
      ("blocking", str(blocking.description)), ("mc", "\(blocking.mc)"), ("kc", "\(blocking.kc)"), ("nc", "\(blocking.nc)"),
      ("kmp_blocktime", str(getenv("KMP_BLOCKTIME").map { String(cString: $0) } ?? "default"))])
Console.error(blocking.description)
if mode == "frames" { frames(); exit(0) }  // no peak: nothing in it is a fraction of the FMA peak
let peak = measurePeak()
if mode == "blocking" { blockingSweep(peak: peak) }
if mode == "mc" { mcSweep() }
if mode == "conv" { convPadding() }
if mode == "all" || mode == "gemm" { gemm(peak: peak) }
if mode == "all" || mode == "train" {
    trainStep(.cnn, batch: 32, peak: peak)
    trainStep(.cnn, batch: 128, peak: peak)
    trainStep(.mlp, batch: 32, peak: peak)
    trainStep(Preset.fast.recipe.model, batch: 32, peak: peak)  // the fast preset's network (issue 15's target)
    trainStep(Preset.fast.recipe.model, batch: 128, peak: peak)
}
if mode == "all" || mode == "predict" { predict(peak: peak) }
if mode == "scaling" {
    trainStep(.cnn, batch: 32, peak: peak)
    trainStep(.cnn, batch: 128, peak: peak)
    predict(peak: peak, latency: false)
}
