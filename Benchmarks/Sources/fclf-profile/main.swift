// fclf-profile: where the time of one training step goes, plan step by plan step (forward, backward, optimiser).
// Usage: swift run -c release --package-path Benchmarks fclf-profile [cnn|mlp|cnn-bn|cnn3-bn|cnn3w-bn|wide-bn|wide-bn-nodrop|same-bn|deep-bn|res-bn|res2-bn] [batch] [steps] [nogemm]
//        ... fclf-profile infer [cnn|...] [batch] [calls]: the inference plan's steps instead (what fclf_predict runs)
//        ... fclf-profile convbwd [batch] [reps]: the seed CNN's conv2 backward split into its parts
import CKernels
import FashionCLF
#if canImport(Glibc)
import Glibc
#endif

var args = CommandLine.arguments
if args.count > 1 && args[1] == "convbwd" {
    profileConvBackward(batch: args.count > 2 ? Int(args[2]) ?? 128 : 128, reps: args.count > 3 ? Int(args[3]) ?? 50 : 50)
    exit(0)
}
if args.count > 1 && args[1] == "infer" {
    args.remove(at: 1)
    profileInference(ModelKind(rawValue: args.count > 1 ? args[1] : "cnn") ?? .cnn,
                     batch: args.count > 2 ? Int(args[2]) ?? 1 : 1, calls: args.count > 3 ? Int(args[3]) ?? 20000 : 20000)
    exit(0)
}
let kind = args.count > 1 ? (ModelKind(rawValue: args[1]) ?? .cnn) : .cnn
let batch = args.count > 2 ? Int(args[2]) ?? 32 : 32
let steps = args.count > 3 ? Int(args[3]) ?? 200 : 200

let net = kind.build(seed: 1)
let adam = Adam(parameters: net.parameters)
let loss = SoftmaxCrossEntropy(classes: 10)
let input = Buffer<Float>(capacity: batch * 784)
var rng = SplitMix64(seed: 7)
for i in 0..<batch * 784 { input.pointer[i] = rng.nextUnitFloat() }
let labels = Buffer<Int32>(capacity: batch)
for i in 0..<batch { labels.pointer[i] = Int32(i % 10) }
let x = Tensor(data: input.pointer, shape: ModelKind.imageShape.withBatch(batch))

var fwd = [Double](repeating: 0, count: net.steps.count), bwd = fwd
var optSeconds = 0.0, lossSeconds = 0.0
func runStep(record: Bool) {
    net.zeroGradients()
    var t = x
    for (i, layer) in net.steps.enumerated() {
        let s = monotonicSeconds(); t = layer.forward(t); if record { fwd[i] += monotonicSeconds() - s }
    }
    let s0 = monotonicSeconds()
    var g = loss(t, labels: labels.pointer, gradient: true).dlogits
    if record { lossSeconds += monotonicSeconds() - s0 }
    for (i, layer) in net.steps.enumerated().reversed() {
        let s = monotonicSeconds(); g = layer.backward(g); if record { bwd[i] += monotonicSeconds() - s }
    }
    let s1 = monotonicSeconds(); adam.step(); if record { optSeconds += monotonicSeconds() - s1 }
}
for _ in 0..<20 { runStep(record: false) }
let start = monotonicSeconds()
for _ in 0..<steps { runStep(record: true) }
let total = monotonicSeconds() - start
print("\(kind.rawValue) batch \(batch), \(steps) steps, threads \(fclf_get_max_threads()), kernels \(String(cString: fclf_isa_name(fclf_isa_active())))")
print("step \(Text.fixed(total / Double(steps) * 1e3, 3)) ms, \(Int(Double(steps * batch) / total)) images/s")
for (i, layer) in net.steps.enumerated() {
    _ = layer
    print(Text.pad("\(i) \(net.plan.steps[i].name)", 48) + " fwd " + Text.pad(Text.fixed(fwd[i] / Double(steps) * 1e6, 1), 8, right: true)
          + " us  bwd " + Text.pad(Text.fixed(bwd[i] / Double(steps) * 1e6, 1), 8, right: true) + " us")
}
print("loss " + Text.fixed(lossSeconds / Double(steps) * 1e6, 1) + " us, optimiser " + Text.fixed(optSeconds / Double(steps) * 1e6, 1) + " us")

// GEMM alone at the shapes the CNN runs (batch 32), so the layer figures above can be split into
// product and data movement (skipped with a 4th argument "nogemm", e.g. under perf).
if args.count > 4 && args[4] == "nogemm" { exit(0) }
print("\nGEMM (ta tb M N K): GFLOP/s, median of 30")
for (ta, tb, m, n, k) in [(0, 0, 64, 3872, 288), (0, 1, 64, 288, 3872), (1, 0, 288, 3872, 64), (0, 0, 32, 21632, 9), (0, 1, 32, 9, 21632),
                          (0, 0, 32, 128, 1600), (0, 0, 1, 128, 1600), (0, 0, 64, 121, 288), (0, 0, 512, 512, 512), (0, 0, 1024, 1024, 1024)] {
    let a = Buffer<Float>(capacity: m * k), b = Buffer<Float>(capacity: k * n), c = Buffer<Float>(capacity: m * n)
    for i in 0..<m * k { a.pointer[i] = rng.uniform(1) }
    for i in 0..<k * n { b.pointer[i] = rng.uniform(1) }
    var times: [Double] = []
    for r in 0..<35 {
        let s = monotonicSeconds()
        fclf_sgemm(Int32(ta), Int32(tb), Int64(m), Int64(n), Int64(k), 1, a.pointer, Int64(ta == 0 ? k : m), b.pointer,
                   Int64(tb == 0 ? n : k), 0, c.pointer, Int64(n))
        if r >= 5 { times.append(monotonicSeconds() - s) }
    }
    times.sort()
    let t = times[times.count / 2]
    print("\(ta) \(tb) \(m) \(n) \(k): \(Text.fixed(2.0 * Double(m * n * k) / t / 1e9, 1)) GFLOP/s, \(Text.fixed(t * 1e6, 1)) us")
}

/// Per step of the inference plan (BatchNorm folded, weights packed), as `Classifier.predict` runs it on the
/// calling thread: median microseconds per call over `calls` calls of `batch` images.
func profileInference(_ kind: ModelKind, batch: Int, calls: Int) {
    var rng = SplitMix64(seed: 0)
    let trained = kind.build(seed: 1)
    let plan = try! Plan(specs: trained.specs, inputShape: trained.inputShape, mode: .inference)
    // Random weights and inputs. The time depends on them only through the zero inputs a single image's dense
    // rows skip (about half here); a trained model on real images has more (fclf-bench predict --model).
    let net = Sequential(name: trained.name, plan: plan, rng: &rng)
    for (step, layer) in zip(plan.steps, net.steps) { layer.packForInference(step.input) }
    let act = plan.steps.reduce(plan.inputShape.perSample) { max($0, $1.output.perSample) } * batch
    let work = zip(plan.steps, net.steps).reduce(plan.outputSize * batch) { max($0, $1.1.inferenceWork($1.0.input, n: batch)) }
    let a0 = Buffer<Float>(capacity: act), b0 = Buffer<Float>(capacity: act), w = Buffer<Float>(capacity: work)
    let kept = Buffer<Float>(capacity: act)  // a residual block's input, from its start to its end (as Classifier)
    for i in 0..<batch * plan.inputShape.perSample { a0.pointer[i] = rng.nextUnitFloat() }
    let input = Array(UnsafeBufferPointer(start: a0.pointer, count: batch * plan.inputShape.perSample))
    var times = [[Double]](repeating: [], count: plan.steps.count)
    // as Classifier.predict: a few images on the calling thread, with the helper thread when it is awake
    let assist = batch <= 4 && fclf_get_max_threads() >= 2
    if batch <= 4 { fclf_serial_begin() }
    if assist { fclf_assist_begin() }
    for c in 0..<calls + 100 {
        input.withUnsafeBufferPointer { a0.pointer.update(from: $0.baseAddress!, count: $0.count) }
        var a = a0.pointer, b = b0.pointer
        for (i, (step, layer)) in zip(plan.steps, net.steps).enumerated() {
            let s = monotonicSeconds()
            let out = layer.infer(a, step.input, n: batch, y: b, work: layer.keepsWork ? kept.pointer : w.pointer)
            if c >= 100 { times[i].append(monotonicSeconds() - s) }
            if out == b { swap(&a, &b) }
        }
    }
    if assist { fclf_assist_end() }
    if batch <= 4 { fclf_serial_end() }
    print("inference plan of \(kind.rawValue), \(batch) image(s) per call, \(calls) calls, threads \(batch <= 4 ? (assist ? "1 + helper" : "1") : "\(fclf_get_max_threads())"), kernels \(String(cString: fclf_isa_name(fclf_isa_active())))")
    var total = 0.0
    for (i, step) in plan.steps.enumerated() {
        times[i].sort()
        let p50 = times[i][times[i].count / 2]
        total += p50
        print(Text.pad("\(i) \(step.name)", 52) + Text.pad(Text.fixed(p50 * 1e6, 2), 9, right: true) + " us")
    }
    print("sum of medians " + Text.fixed(total * 1e6, 2) + " us")
}

/// The seed CNN's conv2 backward (32 -> 64 channels, 13 x 13, pooled after the product) split into what can be
/// timed through the kernels' API, medians over `reps` calls: the 2x2 pooling's adjoint into NCHW (what the
/// fused pass's routing into the GEMM layout costs, about), the pass without dx (routing, the bias and weight
/// gradients) and with dx (also the input gradient: its product and col2im). Run at several thread counts, it
/// says which part stops a training step's scaling.
func profileConvBackward(batch: Int, reps: Int) {
    var rng = SplitMix64(seed: 5)
    let s = fclf_conv2d_make_shape(Int64(batch), 32, 13, 13, 64, 3, 3, 0)
    let P = Int(s.oh * s.ow), Q = Int((s.oh / 2) * (s.ow / 2))
    func buffer(_ n: Int, _ scale: Float = 1) -> Buffer<Float> {
        let b = Buffer<Float>(capacity: max(1, n))
        for i in 0..<n { b.pointer[i] = rng.uniform(scale) }
        return b
    }
    let x = buffer(batch * 32 * 169), w = buffer(64 * 288, 0.1), bias = buffer(64, 0.1)
    let y = buffer(batch * 64 * P), pooled = buffer(batch * 64 * Q), dy = buffer(batch * 64 * Q)
    let argmax = Buffer<Int32>(capacity: batch * 64 * Q)
    let dx = buffer(batch * 32 * 169), dw = buffer(64 * 288), db = buffer(64), routed = buffer(batch * 64 * P)
    let dcol = buffer(Int(fclf_conv2d_dcol_size(s))), tmp = buffer(Int(fclf_conv2d_backward_tmp_size(s, 1, 1)))
    fclf_conv2d_forward(y.pointer, nil, x.pointer, w.pointer, bias.pointer, 1, s)
    fclf_maxpool2x2_forward(pooled.pointer, argmax.pointer, y.pointer, Int64(batch * 64), s.oh, s.ow)
    func median(_ body: () -> Void) -> Double {
        for _ in 0..<5 { body() }
        var t: [Double] = []
        for _ in 0..<reps {
            let s0 = monotonicSeconds(); body(); t.append(monotonicSeconds() - s0)
        }
        return t.sorted()[t.count / 2] * 1e6
    }
    let route = median { fclf_maxpool2x2_backward(routed.pointer, dy.pointer, argmax.pointer, pooled.pointer, Int64(batch * 64), s.oh, s.ow) }
    let noDx = median { fclf_conv2d_pool_backward(nil, dw.pointer, db.pointer, dcol.pointer, tmp.pointer, dy.pointer, argmax.pointer,
                                                  pooled.pointer, nil, x.pointer, w.pointer, s) }
    let full = median { fclf_conv2d_pool_backward(dx.pointer, dw.pointer, db.pointer, dcol.pointer, tmp.pointer, dy.pointer, argmax.pointer,
                                                  pooled.pointer, nil, x.pointer, w.pointer, s) }
    print("conv2 backward, batch \(batch), threads \(fclf_get_max_threads()), median of \(reps): pooling adjoint (NCHW) "
          + "\(Text.fixed(route, 1)) us, routing + weight gradient \(Text.fixed(noDx, 1)) us, + input gradient "
          + "\(Text.fixed(full - noDx, 1)) us, whole \(Text.fixed(full, 1)) us")
}
