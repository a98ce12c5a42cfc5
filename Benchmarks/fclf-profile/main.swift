// fclf-profile: where the time of one training step goes, layer by layer (forward, backward, optimiser).
// Usage: swift run -c release fclf-profile [cnn|mlp] [batch] [steps]
import CKernels
import FashionCLF

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

var fwd = [Double](repeating: 0, count: net.layers.count), bwd = fwd
var optSeconds = 0.0, lossSeconds = 0.0
@MainActor func runStep(record: Bool) {
    net.zeroGradients()
    var t = x
    for (i, layer) in net.layers.enumerated() {
        let s = monotonicSeconds(); t = layer.forward(t); if record { fwd[i] += monotonicSeconds() - s }
    }
    let s0 = monotonicSeconds()
    var g = loss(t, labels: labels.pointer, gradient: true).dlogits
    if record { lossSeconds += monotonicSeconds() - s0 }
    for (i, layer) in net.layers.enumerated().reversed() {
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
for (i, layer) in net.layers.enumerated() {
    print(Text.pad("\(i) \(type(of: layer))", 16) + " fwd " + Text.pad(Text.fixed(fwd[i] / Double(steps) * 1e6, 1), 8, right: true)
          + " us  bwd " + Text.pad(Text.fixed(bwd[i] / Double(steps) * 1e6, 1), 8, right: true) + " us")
}
print("loss " + Text.fixed(lossSeconds / Double(steps) * 1e6, 1) + " us, optimiser " + Text.fixed(optSeconds / Double(steps) * 1e6, 1) + " us")
