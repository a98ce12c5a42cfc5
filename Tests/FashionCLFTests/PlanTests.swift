// The execution plan: what the planner fuses, the summary it gives, and that a model file written before the
// plan existed still loads and predicts the same bits.
import CKernels
import Foundation
import Testing

@testable import FashionCLF

@Suite("Execution plan")
struct PlanTests {
    @Test("the seed CNN: convolution + ReLU + pooling fused into one step each, summary rows and total as Keras'")
    func seedCNN() throws {
        let plan = try Plan(specs: ModelKind.cnn.specs, inputShape: ModelKind.imageShape)
        #expect(plan.steps.map(\.layers) == [0..<2, 2..<4, 4..<5, 5..<6, 6..<7])
        // conv1 has 9 taps per output: one pass; conv2 (288 taps) pools right after its product, or computes its
        // pooling windows as Winograd tiles where AVX-512 or AVX2 runs.
        let conv2: Plan.Step.ConvPooling = fclf_isa_active() != Int32(FCLF_ISA_SCALAR.rawValue) ? .winograd : .afterwards
        #expect(plan.steps.map(\.pooling) == [.onePass, conv2, .none, .none, .none])
        #expect(plan.steps.map(\.layer) == [0, 2, 4, 5, 6].map { ModelKind.cnn.specs[$0] })
        #expect(plan.steps.map(\.computesInputGradient) == [false, true, true, true, true])
        #expect(plan.steps[1].output == Shape(n: 1, c: 64, h: 5, w: 5))

        let summary = ModelSummary(name: "cnn", plan: plan)
        #expect(summary.rows.map(\.parameters) == [320, 0, 18_496, 0, 0, 204_928, 1_290])
        #expect(summary.totalParameters == 225_034)
        #expect(summary.rows.map(\.outputShape) == [[32, 26, 26], [32, 13, 13], [64, 11, 11], [64, 5, 5], [1600], [128], [10]])
        #expect(summary.rows.map(\.fused) == [true, true, true, true, false, false, false])
        let text = summary.description
        #expect(text.contains("Total parameters: 225,034"))
        #expect(text.contains("conv2d+relu+maxpool (one pass)"))
        #expect(text.split(separator: "\n").count == 1 + 2 + 7 + 1)
        #expect(ModelKind.cnn.build(seed: 1).parameterCount == 225_034)
    }

    @Test("the MLP: one step per layer, nothing fused")
    func mlp() throws {
        let plan = try Plan(specs: ModelKind.mlp.specs, inputShape: ModelKind.imageShape)
        #expect(plan.steps.map(\.name) == ["flatten (view)", "dense+relu", "dense+relu", "dense"])
        #expect(ModelSummary(name: "mlp", plan: plan).totalParameters == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10)
    }

    @Test("a pooling that does not follow a convolution is a step of its own, and trains like the fused one")
    func unfusedPooling() throws {
        let fusedSpecs: [LayerSpec] = [.conv2d(inChannels: 1, outChannels: 4, kernelSize: 3, padding: .same, activation: .none),
                                       .maxPool2x2, .flatten, .dense(inputSize: 4 * 14 * 14, outputSize: 10, activation: .none)]
        // With a ReLU layer between the convolution and the pooling, the planner fuses nothing.
        let splitSpecs: [LayerSpec] = [fusedSpecs[0], .relu, .maxPool2x2, fusedSpecs[2], fusedSpecs[3]]
        let split = try Plan(specs: splitSpecs, inputShape: ModelKind.imageShape)
        #expect(split.steps.map(\.name) == ["conv2d", "relu", "maxpool", "flatten (view)", "dense"])
        let fused = try Plan(specs: fusedSpecs, inputShape: ModelKind.imageShape)
        #expect(fused.steps.map(\.name) == ["conv2d+maxpool (one pass)", "flatten (view)", "dense"])

        // Training the split network once and predicting with it: every step's infer agrees with its forward.
        var rng = SplitMix64(seed: 3)
        let net = Sequential(name: "split", plan: split, rng: &rng)
        let images = synthetic(count: 8, seed: 4)
        let trainer = Trainer(model: net, config: TrainConfig())
        _ = trainer.trainEpoch(images)
        let eval = trainer.evaluate(images)
        var labels = [Int32](repeating: -1, count: 8)
        try images.withPixels { px in try Classifier(net).predict(px.baseAddress!, count: 8, probabilities: nil, labels: &labels) }
        #expect(labels.map { UInt8($0) } == eval.predictions)
    }

    @Test("a convolution step by Winograd gives the GEMM's outputs to rounding and its gradients bit for bit (the same backward pass on the same input)")
    func winogradStepMatchesGEMM() {
        // cnn3-bn's conv2 shape (32 -> 64 channels, 14 -> 12), 4 images, ReLU; the kernel runs only on AVX-512
        let (n, c, oc, side) = (4, 32, 64, 14)
        var r1 = SplitMix64(seed: 21), r2 = SplitMix64(seed: 21)
        let wino = Conv2D(inChannels: c, outChannels: oc, kernelSize: 3, activation: .relu, winograd: true, rng: &r1)
        let gemm = Conv2D(inChannels: c, outChannels: oc, kernelSize: 3, activation: .relu, rng: &r2)
        var x = randomArray(n * c * side * side, seed: 22)
        let shape = Shape(n: n, c: c, h: side, w: side)
        x.withUnsafeMutableBufferPointer { xb in
            let t = Tensor(data: xb.baseAddress!, shape: shape)
            let a = wino.forward(t), b = gemm.forward(t)
            let ya = Array(UnsafeBufferPointer(start: a.data, count: a.shape.count))
            let yb = Array(UnsafeBufferPointer(start: b.data, count: b.shape.count))
            expectClose(ya, yb, atol: 1e-5 * Double(9 * c), rtol: 0, "forward")
            if fclf_isa_active() != Int32(FCLF_ISA_AVX512F.rawValue) { #expect(ya == yb, "no kernel: the GEMM itself") }
            // the backward pass masks with the step's own output: give both the same one (the GEMM's)
            memcpy(UnsafeMutableRawPointer(mutating: a.data), b.data, b.shape.count * MemoryLayout<Float>.size)
            var dy = randomArray(a.shape.count, seed: 23)
            dy.withUnsafeMutableBufferPointer { db in
                let g = Tensor(data: db.baseAddress!, shape: a.shape)
                for p in wino.parameters + gemm.parameters { p.zeroGrad() }
                let dxa = wino.backward(g), dxb = gemm.backward(g)
                #expect(Array(UnsafeBufferPointer(start: dxa.data, count: shape.count)) == Array(UnsafeBufferPointer(start: dxb.data, count: shape.count)))
                for (p, q) in zip(wino.parameters, gemm.parameters) {
                    #expect(Array(UnsafeBufferPointer(start: p.grad, count: p.count)) == Array(UnsafeBufferPointer(start: q.grad, count: q.count)))
                }
            }
        }
    }

    @Test("a fused convolution step gives the bits of the convolution and pooling layers run one after the other (its gradients to rounding: the weights' from x below 16 taps, all at the winners from 16 on)",
          arguments: [(Plan.Step.ConvPooling.onePass, 1), (.afterwards, 4), (.onePass, 4)])
    func fusedStepEqualsSeparateLayers(_ pooling: Plan.Step.ConvPooling, _ c: Int) {
        // (.onePass, 4): 36 taps per output, more than the one-pass kernel takes: the layer pools afterwards.
        let (n, oc, side) = (3, 8, 12)
        var r1 = SplitMix64(seed: 11), r2 = SplitMix64(seed: 11)
        let fused = Conv2D(inChannels: c, outChannels: oc, kernelSize: 3, activation: .relu, pooling: pooling, rng: &r1)
        let conv = Conv2D(inChannels: c, outChannels: oc, kernelSize: 3, activation: .relu, rng: &r2)
        let pool = MaxPool2D()
        var x = randomArray(n * c * side * side, seed: 12)
        let shape = Shape(n: n, c: c, h: side, w: side)
        x.withUnsafeMutableBufferPointer { xb in
            let t = Tensor(data: xb.baseAddress!, shape: shape)
            let a = fused.forward(t), b = pool.forward(conv.forward(t))
            #expect(a.shape == b.shape)
            #expect(Array(UnsafeBufferPointer(start: a.data, count: a.shape.count)) == Array(UnsafeBufferPointer(start: b.data, count: b.shape.count)))
            var dy = randomArray(a.shape.count, seed: 13)
            dy.withUnsafeMutableBufferPointer { db in
                let g = Tensor(data: db.baseAddress!, shape: a.shape)
                for p in fused.parameters + conv.parameters { p.zeroGrad() }
                let dxa = fused.backward(g), dxb = conv.backward(pool.backward(g))
                let gradients = [(dxa.data, dxb.data, shape.count)] + zip(fused.parameters, conv.parameters).map { ($0.grad, $1.grad, $0.count) }
                for (index, (a, b, count)) in gradients.enumerated() {
                    let fusedGrad = Array(UnsafeBufferPointer(start: a, count: count)), separate = Array(UnsafeBufferPointer(start: b, count: count))
                    if c * 9 < 16 && index == 0 {
                        #expect(fusedGrad == separate)  // dx: the same product of the same routed gradient
                    } else if c * 9 < 16 {
                        // the weight and bias gradients read the taps from x, whose rows are longer than the
                        // output's: the same products, summed in other vector lanes
                        expectClose(fusedGrad, separate, atol: 1e-5, rtol: 1e-5, "\(pooling) c\(c) parameter \(index)")
                    } else {
                        // 16 or more taps: the fused backward pass sums one term per window at its winner
                        // (fclf_conv2d_pool_backward_winners), the separate layers multiply the routed full output;
                        // the same terms in another order (at most 3 x 5 x 5 windows of values in [-1, 1] per sum).
                        expectClose(fusedGrad, separate, atol: 1e-4, rtol: 1e-5, "\(pooling) c\(c)")
                    }
                }
            }
        }
    }

    @Test("a per-window convolution step infers the bits its training forward gives (packed weights, work from inferenceWork)",
          arguments: [(1, 3, Padding.valid, 1), (32, 3, .valid, 1), (32, 3, .valid, 3), (8, 2, .same, 2), (4, 3, .same, 2), (16, 3, .same, 2)])
    func perWindowInferEqualsForward(_ c: Int, _ k: Int, _ padding: Padding, _ n: Int) {
        // conv1's and conv2's shapes (one image, a batch), a 2x2 'same' kernel (padding only below and right),
        // and 3x3 'same'; 16 -> 16 'same' on 20x20 is a shape the plane tiles take on AVX-512 and AVX2 (plane.c), whose bits the
        // window kernel does not keep: it declines them. Where the CPU has no window kernel the step falls back to the
        // training path.
        let (oc, side) = c == 32 ? (64, 11) : c == 16 ? (16, 20) : (20, 12)
        var rng = SplitMix64(seed: 41)
        let conv = Conv2D(inChannels: c, outChannels: oc, kernelSize: k, padding: padding, activation: .relu,
                          pooling: .perWindow, rng: &rng)
        for i in 0..<oc { conv.bias.value[i] = Float(i % 5) * 0.1 - 0.2 }
        let shape = Shape(n: n, c: c, h: side, w: side)
        // Where the CPU has the window kernel it must run (else this compares the training path with itself).
        let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(side), Int64(side), Int64(oc), Int64(k), Int64(k), padding == .same ? 1 : 0)
        #expect((fclf_conv2d_window_pool_packed_size(s) > 0) == windowKernelExpected(s))
        conv.packForInference(shape.withBatch(1))
        var x = randomArray(shape.count, seed: 42)
        let out = conv.outputShape(shape)
        var y = [Float](repeating: .nan, count: out.count)
        var work = [Float](repeating: .nan, count: max(1, conv.inferenceWork(shape.withBatch(1), n: n)))
        x.withUnsafeMutableBufferPointer { xb in
            let trained = conv.forward(Tensor(data: xb.baseAddress!, shape: shape), training: false)
            let expected = Array(UnsafeBufferPointer(start: trained.data, count: trained.shape.count))
            _ = conv.infer(xb.baseAddress!, shape.withBatch(1), n: n, y: &y, work: &work)
            #expect(trained.shape == out)
            #expect(y == expected, "c\(c) k\(k) \(padding) n\(n): per-window inference against the training forward")
            #expect(expected.contains { $0 > 0 } && expected.allSatisfy { $0 >= 0 })
        }
    }

    @Test("a model with even 'same' kernels (4x4, then 2x2 with all of its padding below and right) trains, round-trips and infers like evaluation and its Double reference")
    func evenSameKernels() throws {
        let specs: [LayerSpec] = [
            .conv2d(inChannels: 1, outChannels: 6, kernelSize: 4, padding: .same, activation: .relu), .maxPool2x2,
            .conv2d(inChannels: 6, outChannels: 16, kernelSize: 2, padding: .same, activation: .relu), .maxPool2x2,
            .flatten, .dense(inputSize: 16 * 7 * 7, outputSize: 10, activation: .none),
        ]
        var rng = SplitMix64(seed: 51)
        let net = try Sequential(name: "even", inputShape: ModelKind.imageShape, specs: specs, rng: &rng)
        let data = synthetic(count: 64, seed: 52)
        let trainer = Trainer(model: net, config: TrainConfig())
        for _ in 0..<2 { _ = trainer.trainEpoch(data) }
        let path = temporaryDirectory() + "/even.fclf"
        try ModelFile.save(net, to: path)
        let loaded = try ModelFile.load(path)
        #expect(loaded.specs == specs)
        let eval = trainer.evaluate(data)
        #expect(Trainer(model: loaded, config: TrainConfig()).evaluate(data).predictions == eval.predictions)
        let probs = try expectInferenceMatchesEvaluation(Classifier(loaded), eval, data)
        // Against the network written out in Double, with 'same' meaning (k - 1) / 2 zeros above and left and
        // k / 2 below and right (ONNX's and Keras' convention): reading past the image instead of zeros
        // changes the sums of the last row and column.
        let p = loaded.stored.map { Array(UnsafeBufferPointer(start: $0.value, count: $0.count)).map(Double.init) }
        func convReluPool(_ x: [Double], _ c: Int, _ side: Int, _ w: [Double], _ b: [Double], _ oc: Int, _ k: Int) -> [Double] {
            let z = convRef(x, w, b, n: 1, c: c, h: side, wd: side, oc: oc, k: k, same: true).map { max(0, $0) }
            return maxPoolRef(z, planes: oc, h: side, w: side)
        }
        data.withPixels { px in
            for i in 0..<8 {
                let x = (0..<784).map { Double(px[i * 784 + $0]) / 255 }
                let h = convReluPool(convReluPool(x, 1, 28, p[0], p[1], 6, 4), 6, 14, p[2], p[3], 16, 2)
                let logits = denseRef(h, p[4], p[5], n: 1, input: h.count, output: 10)
                let e = logits.map { exp($0 - logits.max()!) }
                expectClose(Array(probs[i * 10..<(i + 1) * 10]), e.map { Float($0 / e.reduce(0, +)) }, atol: 1e-5, rtol: 1e-4, "image \(i) against Double")
            }
        }
    }

    @Test("layers that do not chain are refused with the layer's index, before anything is allocated")
    func chaining() {
        #expect(throws: FCLFError.invalidArgument("layer 1: dense(100->10) does not fit input [1, 784, 1, 1]")) {
            try Plan(specs: [.flatten, .dense(inputSize: 100, outputSize: 10, activation: .none)], inputShape: ModelKind.imageShape)
        }
        #expect(throws: FCLFError.self) { try Plan(specs: [], inputShape: ModelKind.imageShape) }
    }

    @Test("residual blocks: each shortcut closed by an add of the same shape, none nested; else refused with the layer named")
    func residualPairing() throws {
        let conv = { (ic: Int, oc: Int) in LayerSpec.conv2d(inChannels: ic, outChannels: oc, kernelSize: 3, padding: .same, activation: .relu) }
        let tail: [LayerSpec] = [.globalAvgPool, .dense(inputSize: 4, outputSize: 10, activation: .none)]
        let good: [LayerSpec] = [conv(1, 4), .shortcut, conv(4, 4), .addShortcut, .shortcut, .addShortcut] + tail
        #expect(try Plan(specs: good, inputShape: ModelKind.imageShape).steps.map(\.name)
                == ["conv2d+relu", "shortcut (input kept)", "conv2d+relu", "add shortcut", "shortcut (input kept)", "add shortcut",
                    "global avgpool", "dense"])
        let cases: [([LayerSpec], String)] = [
            ([conv(1, 4), .shortcut, .shortcut, .addShortcut, .addShortcut] + tail,
             "layer 2: shortcut inside the residual block opened at layer 1; close that one first (add shortcut)"),
            ([conv(1, 4), .addShortcut] + tail, "layer 1: add shortcut without a shortcut before it"),
            ([conv(1, 4), .shortcut, conv(4, 4)] + tail, "layer 1: shortcut never closed; add an add shortcut layer"),
            ([.shortcut, conv(1, 4), .addShortcut] + tail,
             "layer 2: add shortcut of [1, 4, 28, 28] to the [1, 1, 28, 28] kept at layer 0; the block must keep its shape"),
        ]
        for (specs, message) in cases {
            #expect(throws: FCLFError.invalidArgument(message)) { try Plan(specs: specs, inputShape: ModelKind.imageShape) }
        }
    }

    @Test("model files store the named layer-kind codes")
    func layerKindCodes() throws {
        let bytes = try ModelFile.encode(ModelKind.cnn.build(seed: 2), classes: 10)
        // header: magic 8, version 4, name length 4 + "cnn", c h w 12, classes 4, layer count 4
        var at = 8 + 4 + 4 + 3 + 12 + 4 + 4
        func u32() -> UInt32 { defer { at += 4 }; return bytes[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        var kinds: [UInt32] = []
        for spec in ModelKind.cnn.specs {
            kinds.append(u32())
            at += 4 * (spec.kind == .conv2d ? 5 : spec.kind == .dense ? 3 : 0)
        }
        #expect(kinds == [1, 4, 1, 4, 5, 2, 2])
        #expect(kinds == ModelKind.cnn.specs.map(\.kind.rawValue))
    }

    /// The first 64 test images as bytes.
    private func testImages(_ n: Int) throws -> [UInt8] {
        let data = try FashionMNIST(directory: FashionMNIST.resolveDirectory(nil))
        return data.test.withPixels { Array($0.prefix(n * 784)) }
    }

    @Test("the seed CNN that was built in before the plan existed (Fixtures/seed-cnn-dea59f8.fclf) predicts the bits it did then (batch and single images)")
    func builtInModelPredictsAsBefore() throws {
        let fixture = packageRoot + "/Tests/FashionCLFTests/Fixtures/builtin-model-dea59f8-predictions.txt"
        let lines = try String(contentsOfFile: fixture, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        let expected = lines.map { $0.split(separator: " ") }
        let n = expected.count
        #expect(n == 64)
        let classifier = try Classifier(contentsOf: packageRoot + "/Tests/FashionCLFTests/Fixtures/seed-cnn-dea59f8.fclf")
        #expect(classifier.summary.totalParameters == 225_034)
        let pixels = try testImages(n)
        var probs = [Float](repeating: 0, count: n * 10), labels = [Int32](repeating: -1, count: n)
        try pixels.withUnsafeBufferPointer { try classifier.predict($0.baseAddress!, count: n, probabilities: &probs, labels: &labels) }
        var single = [Float](repeating: 0, count: 10)
        // The fixture was made with KC = 320 on AVX-512, conv2 through the GEMM. A product's bits depend on its K
        // blocks (equal blocks of at most KC): where this machine's KC cuts the model's K values (288, 1600, 128)
        // alike, the variant is AVX-512 and conv2 still runs as that product, the bits must be those; elsewhere
        // (conv2 by Winograd, which rounds otherwise) the labels, and the probabilities to rounding.
        func blocks(_ k: Int, _ kc: Int) -> Int { let n = (k + kc - 1) / kc; return (k + n - 1) / n }
        let kc = GEMMBlocking.active.kc
        let winograd = classifier.plan.steps.contains { $0.pooling == .winograd }
        let sameBits = fclf_isa_active() == Int32(FCLF_ISA_AVX512F.rawValue) && !winograd
            && [288, 1600, 128].allSatisfy { blocks($0, kc) == blocks($0, 320) }
        for i in 0..<n {
            #expect(Int32(expected[i][0]) == labels[i], "image \(i): label")
            let bits = expected[i].dropFirst().map { UInt32($0, radix: 16)! }
            try pixels.withUnsafeBufferPointer { try classifier.predict($0.baseAddress! + i * 784, count: 1, probabilities: &single, labels: nil) }
            if sameBits {
                #expect(probs[i * 10..<(i + 1) * 10].map(\.bitPattern) == bits, "image \(i): probabilities")
                #expect(single.map(\.bitPattern) == bits, "image \(i) alone: probabilities")
            } else {
                let recorded = bits.map { Float(bitPattern: $0) }
                expectClose(Array(probs[i * 10..<(i + 1) * 10]), recorded, atol: 1e-6, rtol: 1e-4, "image \(i): probabilities (KC \(kc))")
                #expect(single == Array(probs[i * 10..<(i + 1) * 10]), "image \(i) alone: probabilities differ from the batch's")
            }
        }
    }

    @Test("a batch split into chunks across threads gives the bits of one thread and of single images (built-in model, seed CNN)")
    func batchChunksAcrossThreadsKeepBits() throws {
        let n = 101  // several chunks and an odd tail for both models
        let pixels = try testImages(n)
        for classifier in [try Classifier.builtIn(), Classifier(ModelKind.cnn.build(seed: 3))] {
            func run(_ threads: Int) throws -> ([UInt32], [Int32]) {
                var probs = [Float](repeating: .nan, count: n * 10), labels = [Int32](repeating: -1, count: n)
                try withThreads(threads) {
                    try pixels.withUnsafeBufferPointer { try classifier.predict($0.baseAddress!, count: n, probabilities: &probs, labels: &labels) }
                }
                return (probs.map(\.bitPattern), labels)
            }
            let one = try run(1)
            #expect(one.1.allSatisfy { (0..<10).contains($0) })
            for threads in [2, 3] {
                let many = try run(threads)
                let wrong = zip(many.0, one.0).filter { $0 != $1 }.count
                #expect(wrong == 0, "\(classifier.name): \(wrong) probabilities differ on \(threads) threads")
                #expect(many.1 == one.1, "\(classifier.name): labels on \(threads) threads")
            }
            // Labels only (the probabilities then live in each thread's scratch).
            var labels = [Int32](repeating: -1, count: n)
            try withThreads(2) {
                try pixels.withUnsafeBufferPointer { try classifier.predict($0.baseAddress!, count: n, probabilities: nil, labels: &labels) }
            }
            #expect(labels == one.1)
            for i in [0, 50, 100] {
                let single = try classifier.probabilities(Array(pixels[i * 784..<(i + 1) * 784]))
                #expect(single.map(\.bitPattern) == Array(one.0[i * 10..<(i + 1) * 10]), "\(classifier.name): image \(i) alone")
            }
        }
    }

    @Test("a batch whose chunks fail on several threads names the first failing image, as one thread does")
    func batchChunksReportTheFirstFailure() throws {
        let net = ModelKind.mlp.build(seed: 1)
        let w = net.parameters[0]
        for i in 0..<w.count { w.value[i] = 1e37 }  // finite; a bright image overflows float, a blank one gives 0
        let classifier = Classifier(try ModelFile.decode(try ModelFile.encode(net, classes: 10), path: "huge.fclf"))
        let n = 130  // chunks of 32: images 45 and 100 fall in the second and fourth
        var pixels = [UInt8](repeating: 0, count: n * 784)
        for i in [45, 100] { for j in 0..<784 { pixels[i * 784 + j] = 255 } }
        for threads in [1, 2, 3] {
            var probs = [Float](repeating: 0, count: n * 10)
            var message = "no error"
            do {
                try withThreads(threads) {
                    try pixels.withUnsafeBufferPointer { try classifier.predict($0.baseAddress!, count: n, probabilities: &probs, labels: nil) }
                }
            } catch let error as FCLFError {
                message = error.description
            }
            #expect(message.contains("image 45:"), "\(threads) threads: \(message)")
        }
    }
}
