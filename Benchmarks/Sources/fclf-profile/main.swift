// fclf-profile: where the time of one training step goes, plan step by plan step (forward, backward, optimiser).
// Usage: swift run -c release --package-path Benchmarks fclf-profile [cnn|mlp] [batch] [steps] [nogemm]
import CKernels
import FashionCLF
#if canImport(Glibc)
import Glibc
#endif

let args = CommandLine.arguments
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
                          (0, 0, 32, 128, 1600), (0, 0, 512, 512, 512), (0, 0, 1024, 1024, 1024)] {
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
