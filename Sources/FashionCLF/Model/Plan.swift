import CKernels

/// A model compiled for execution: the steps that training (forward and backward) and inference both run,
/// in order, with their shapes and fused epilogues.
///
/// The planner (`Plan.init`) is the one place that decides fusion. For training it fuses a convolution with
/// the 2x2 max pooling that follows it: the convolution's step pools its own output, in one pass when the
/// kernels can (`fclf_conv2d_pool_supported`: few taps per output, small planes) and right after the
/// product otherwise; its backward pass routes the pooled gradient straight into the product's layout.
/// Likewise a BatchNorm followed by a ReLU and a 2x2 max pooling is one training step that never stores its
/// full-size output (`fclf_batchnorm_pool_supported`). A network's first convolution without activation
/// and the BatchNorm (+ReLU, +pooling) after it are one training step (`ConvBatchNorm`) that never stores the
/// convolution's output: BatchNorm's statistics and gradients come from the moments of the input's patches
/// (`fclf_conv2d_batchnorm_supported`).
/// For inference it also folds a BatchNorm into the convolution or dense layer before it when that layer has
/// no activation of its own (its evaluation form is then a per-channel affine map of the layer's output), takes a ReLU that follows as that layer's activation, and drops
/// dropout (the identity in evaluation). Every other layer is a step of its own. A plan owns no memory:
/// `Sequential` builds one executor per step.
public struct Plan: Sendable {
    /// One step: a layer, with the layers the planner fused into it as its epilogue.
    public struct Step: Sendable, Equatable {
        /// How a convolution (or BatchNorm+ReLU) step does the 2x2 max pooling fused into it.
        public enum ConvPooling: String, Sendable {
            case none
            /// Convolution and pooling in one pass; the full-size output is never stored.
            case onePass = "one pass"
            /// The convolution's output is pooled right after its product.
            case afterwards = "pooled after the product"
            /// Inference: computed pooling window by pooling window, output channels in vector lanes, only the
            /// pixels the pooling reads (`fclf_conv2d_window_pool`); the bits of `.onePass` or `.afterwards`.
            case perWindow = "pooled per window"
            /// A 3x3 'valid' convolution by Winograd's F(2x2, 3x3), each pooling window one output tile
            /// (`fclf_conv2d_winograd_pool`): 16 multiply-adds per window and channel pair instead of 36, the
            /// same outputs to rounding (not bit for bit); training keeps the winners, as `.onePass` does.
            case winograd = "Winograd F(2x2,3x3), pooled per tile"
        }

        /// The layer whose op the step runs (its fused activation included).
        public let layer: LayerSpec
        /// The 2x2 max pooling fused into a convolution or BatchNorm+ReLU step.
        public let pooling: ConvPooling
        /// Inference: the index of the BatchNorm layer folded into this step's weights.
        public let foldedBatchNorm: Int?
        /// Training: the index of the BatchNorm layer a network's first convolution runs with in one step
        /// (`ConvBatchNorm`, from the moments of the input's patches; the convolution's output never stored).
        public let trainedBatchNorm: Int?
        /// A ReLU layer run as this BatchNorm step's epilogue (a convolution or dense step takes it as its
        /// activation instead).
        public let fusedReLU: Bool
        /// Training: an unpooled convolution whose product runs by Winograd's F(2x2, 3x3)
        /// (`fclf_conv2d_winograd_forward`: 16 multiply-adds per 2x2 output tile and channel pair instead of 36,
        /// the same outputs to rounding); its backward pass is the GEMM's.
        public var winograd = false
        /// The layers (indices into `Plan.specs`) this step executes.
        public let layers: Range<Int>
        /// Per-sample shapes.
        public let input: Shape, output: Shape
        /// False for the first step: nothing upstream reads its input gradient, so it is not computed.
        public let computesInputGradient: Bool

        /// "conv2d+relu+maxpool (one pass)", "dense+batchnorm (folded)+relu", "flatten (view)".
        public var name: String {
            let folded = foldedBatchNorm == nil ? "" : "+batchnorm (folded)"
            switch layer {
            case .conv2d where trainedBatchNorm != nil:
                let base = "conv2d+batchnorm" + (fusedReLU ? "+relu" : "") + (pooling == .none ? "" : "+maxpool")
                return base + " (from the input's moments; z never stored)"
            case .conv2d(_, _, _, _, let act):
                let base = "conv2d" + folded + (act == .relu ? "+relu" : "")
                if winograd { return base + " (Winograd F(2x2,3x3))" }
                return pooling == .none ? base : "\(base)+maxpool (\(pooling.rawValue))"
            case .dense(_, _, let act): return "dense" + folded + (act == .relu ? "+relu" : "")
            case .relu: return "relu"
            case .maxPool2x2: return "maxpool"
            case .flatten: return "flatten (view)"
            case .batchNorm:
                let base = fusedReLU ? "batchnorm+relu" : "batchnorm"
                return pooling == .none ? base : "\(base)+maxpool (\(pooling.rawValue))"
            case .dropout: return "dropout"
            case .globalAvgPool: return "global avgpool"
            case .temperature: return "temperature"
            case .shortcut: return "shortcut (input kept)"
            case .addShortcut: return "add shortcut"
            }
        }
    }

    /// What the plan executes: training (forward and backward, batch statistics, dropout) or inference.
    public enum Mode: Sendable {
        case training, inference
    }

    public let specs: [LayerSpec]
    public let mode: Mode
    /// Per-sample input shape (`n` = 1) and the per-sample shape after each layer.
    public let inputShape: Shape
    public let layerShapes: [Shape]
    public let steps: [Step]

    /// Per-sample output size (the number of classes for a classifier).
    public var outputSize: Int { layerShapes[layerShapes.count - 1].perSample }
    public var parameterCount: Int { specs.reduce(0) { $0 + $1.parameterCount } }

    /// Compiles `specs` for per-sample input `inputShape`. Throws when the layers do not chain.
    public init(specs: [LayerSpec], inputShape: Shape, mode: Mode = .training) throws(FCLFError) {
        let input = inputShape.withBatch(1)
        let shapes = try chainShapes(specs, input: input)
        var steps: [Step] = []
        var i = 0
        while i < specs.count {
            let x = i == 0 ? input : shapes[i - 1]
            var layer = specs[i], end = i + 1, pooling = Step.ConvPooling.none, folded: Int? = nil, fusedReLU = false
            var trained: Int? = nil
            func next(_ spec: LayerSpec) -> Bool { end < specs.count && specs[end] == spec }
            func skipDropout() {
                while mode == .inference, end < specs.count, case .dropout = specs[end] { end += 1 }
            }
            // Inference: a product without activation takes the BatchNorm and the ReLU that follow it.
            func absorbIntoProduct(_ act: inout Activation) {
                guard mode == .inference else { return }
                // Only into an identity output: BatchNorm after a ReLU normalises max(z, 0), not z.
                if act == .none, end < specs.count, case .batchNorm = specs[end] { folded = end; end += 1 }
                if act == .none && next(.relu) { act = .relu; end += 1 }
                skipDropout()
            }
            // A BatchNorm at layer j (planes h x w) takes the ReLU after it, and in training the 2x2 max pooling
            // after that too (inference folds the BatchNorm into the product before it, which then pools).
            func batchNormEpilogue(at j: Int, h: Int, w: Int) -> (relu: Bool, pool: Bool) {
                let relu = j + 1 < specs.count && specs[j + 1] == .relu
                return (relu, mode == .training && relu && j + 2 < specs.count && specs[j + 2] == .maxPool2x2
                            && fclf_batchnorm_pool_supported(Int64(h), Int64(w)) != 0)
            }
            func take(batchNormAt j: Int, _ epilogue: (relu: Bool, pool: Bool)) {
                fusedReLU = epilogue.relu
                if epilogue.pool { pooling = .onePass }
                end = j + 1 + (epilogue.relu ? 1 : 0) + (epilogue.pool ? 1 : 0)
                skipDropout()
            }
            switch layer {
            case .conv2d(let ic, let oc, let k, let padding, var act):
                absorbIntoProduct(&act)
                let s = convShape(x, outChannels: oc, kernelSize: k, padding: padding)
                // Training, a first convolution without activation and the BatchNorm (+ReLU, +pooling) after it:
                // one step that never stores the convolution's output.
                if mode == .training, i == 0, act == .none, end < specs.count, case .batchNorm = specs[end] {
                    let epilogue = batchNormEpilogue(at: end, h: Int(s.oh), w: Int(s.ow))
                    if fclf_conv2d_batchnorm_supported(s, epilogue.pool ? 1 : 0) != 0 {
                        trained = end
                        take(batchNormAt: end, epilogue)
                    }
                }
                // A convolution pools its own output when a 2x2 max pooling follows it.
                if trained == nil, next(.maxPool2x2) {
                    // Winograd where this CPU has it for the shape; else, in inference, per window where it has
                    // the window kernel (the packed weights have a size).
                    pooling = fclf_conv2d_winograd_pool_packed_size(s) > 0 ? .winograd
                        : mode == .inference && fclf_conv2d_window_pool_packed_size(s) > 0 ? .perWindow
                        : fclf_conv2d_pool_supported(s) != 0 ? .onePass : .afterwards
                    end += 1
                    skipDropout()
                }
                layer = .conv2d(inChannels: ic, outChannels: oc, kernelSize: k, padding: padding, activation: act)
            case .dense(let inputSize, let outputSize, var act):
                absorbIntoProduct(&act)
                layer = .dense(inputSize: inputSize, outputSize: outputSize, activation: act)
            case .batchNorm:
                // BatchNorm then ReLU: one pass forward, the ReLU's mask applied in BatchNorm's backward.
                take(batchNormAt: i, batchNormEpilogue(at: i, h: x.h, w: x.w))
            default:
                skipDropout()
            }
            var step = Step(layer: layer, pooling: pooling, foldedBatchNorm: folded, trainedBatchNorm: trained, fusedReLU: fusedReLU,
                            layers: i..<end, input: x, output: shapes[end - 1], computesInputGradient: i > 0)
            // Training's unpooled convolutions (a BatchNorm follows) by Winograd where this CPU has the kernel for
            // the shape. Inference keeps the GEMM with its weights packed once: one image's product shares the
            // second core there, which this kernel would not.
            if mode == .training, pooling == .none, trained == nil, case .conv2d(_, let oc, let k, let padding, _) = layer {
                step.winograd = fclf_conv2d_winograd_packed_size(convShape(x, outChannels: oc, kernelSize: k, padding: padding)) > 0
            }
            steps.append(step)
            i = end
        }
        self.specs = specs
        self.mode = mode
        self.inputShape = input
        self.layerShapes = shapes
        self.steps = steps
    }

    /// The index of the step that executes layer `layer`.
    public func step(executing layer: Int) -> Int? { steps.firstIndex { $0.layers.contains(layer) } }
}

/// The kernels' description of a convolution of a batch of shape `x`.
func convShape(_ x: Shape, outChannels: Int, kernelSize: Int, padding: Padding) -> fclf_conv2d_shape {
    fclf_conv2d_make_shape(Int64(x.n), Int64(x.c), Int64(x.h), Int64(x.w), Int64(outChannels), Int64(kernelSize),
                           Int64(kernelSize), padding == .same ? 1 : 0)
}

/// Pixels as the first layer sees them: byte / 255 (model file format version 1). Training and inference
/// both load their batches through this.
@inline(__always)
func scalePixels(_ src: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    for j in 0..<count { dst[j] = Float(src[j]) * (1 / 255) }
}
