import CFashionCLF
import FashionCLF
import Foundation
import SwiftProtobuf

/// Writes a classifier as an ONNX model (IR version 9, opset 17) for ONNX Runtime and other ONNX readers.
///
/// The graph is the classifier's inference plan, BatchNorm already folded: Conv, Relu, MaxPool, Flatten, Gemm,
/// BatchNormalization (one not folded), GlobalAveragePool, Div (a calibrated model's temperature), then
/// Softmax. Input `x`: float32 [n, 1, 28, 28] holding pixels / 255 (what fashionclf's first layer reads);
/// output `probabilities`: float32 [n, classes]. The model's metadata travels as the metadata property
/// "fashionclf_metadata" (the JSON of fclf_model_metadata).
public enum ONNXExport {
    public static let irVersion: Int64 = 9
    public static let opset: Int64 = 17

    public static func model(_ classifier: Classifier) throws(FCLFError) -> [UInt8] {
        var graph = Onnx_GraphProto()
        graph.name = "fashionclf-" + classifier.name
        // x: the last output; kept: a residual block's input, for its Add; flat: [n, features] rather than
        // [n, c, h, w] (ONNX keeps the rank that our per-sample shapes do not: [c, 1, 1] is either)
        var x = "x", kept = "x", flat = false, keptFlat = false
        var counter = 0
        func node(_ op: String, _ inputs: [String], _ attributes: [Onnx_AttributeProto] = []) -> String {
            counter += 1
            var n = Onnx_NodeProto()
            n.opType = op
            n.name = "\(op.lowercased())_\(counter)"
            n.input = inputs
            n.output = [n.name]
            n.attribute = attributes
            graph.node.append(n)
            return n.name
        }
        func initializer(_ name: String, _ shape: [Int], _ values: [Float]) -> String {
            var t = Onnx_TensorProto()
            t.name = name
            t.dims = shape.map(Int64.init)
            t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
            var raw = [UInt8]()
            raw.reserveCapacity(4 * values.count)
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
            t.rawData = Data(raw)
            graph.initializer.append(t)
            return name
        }
        func ints(_ name: String, _ v: [Int]) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name; a.type = .ints; a.ints = v.map(Int64.init)
            return a
        }
        func int(_ name: String, _ v: Int) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name; a.type = .int; a.i = Int64(v)
            return a
        }
        func float(_ name: String, _ v: Float) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name; a.type = .float; a.f = v
            return a
        }
        func flattened(_ input: String, _ isFlat: Bool) -> String { isFlat ? input : node("Flatten", [input], [int("axis", 1)]) }

        for (k, (step, values)) in classifier.stepValues.enumerated() {
            func param(_ i: Int) -> String { initializer("step\(k)_\(i)", values[i].shape, values[i].values) }
            switch step.layer {
            case .conv2d(_, _, let size, let padding, let act):
                let p = padding == .same ? [(size - 1) / 2, (size - 1) / 2, size / 2, size / 2] : [0, 0, 0, 0]
                x = node("Conv", [x, param(0), param(1)], [ints("kernel_shape", [size, size]), ints("pads", p)])
                if act == .relu { x = node("Relu", [x]) }
                if step.pooling != .none { x = node("MaxPool", [x], [ints("kernel_shape", [2, 2]), ints("strides", [2, 2])]) }
                flat = false
            case .dense(_, _, let act):
                x = node("Gemm", [flattened(x, flat), param(0), param(1)])
                if act == .relu { x = node("Relu", [x]) }
                flat = true
            case .relu: x = node("Relu", [x])
            case .maxPool2x2: x = node("MaxPool", [x], [ints("kernel_shape", [2, 2]), ints("strides", [2, 2])])
            case .flatten: x = flattened(x, flat); flat = true
            case .batchNorm:
                x = node("BatchNormalization", [x, param(0), param(1), param(2), param(3)], [float("epsilon", LayerSpec.batchNormEpsilon)])
                if step.fusedReLU { x = node("Relu", [x]) }
            case .dropout: x = node("Identity", [x])
            case .globalAvgPool: x = node("Flatten", [node("GlobalAveragePool", [x])], [int("axis", 1)]); flat = true
            case .temperature(let t): x = node("Div", [x, initializer("temperature", [], [t])])
            case .shortcut: (kept, keptFlat) = (x, flat)
            case .addShortcut:
                // Both operands at one rank, else Add would broadcast [n, c] against [n, c, 1, 1].
                x = node("Add", [flattened(x, flat || !keptFlat), flattened(kept, keptFlat || !flat)])
                flat = flat || keptFlat
            }
        }
        _ = node("Softmax", [x], [int("axis", 1)])
        graph.node[graph.node.count - 1].output = ["probabilities"]
        let s = classifier.inputShape
        graph.input = [valueInfo("x", [.symbolic("n"), .fixed(s.c), .fixed(s.h), .fixed(s.w)])]
        graph.output = [valueInfo("probabilities", [.symbolic("n"), .fixed(classifier.classes)])]

        var model = Onnx_ModelProto()
        model.irVersion = irVersion
        model.producerName = "fashionclf"
        model.producerVersion = String(cString: fclf_version())
        var opsetID = Onnx_OperatorSetIdProto()
        opsetID.version = opset
        model.opsetImport = [opsetID]
        model.graph = graph
        var meta = Onnx_StringStringEntryProto()
        meta.key = "fashionclf_metadata"
        meta.value = classifier.metadataJSON
        model.metadataProps = [meta]
        do {
            return try model.serializedBytes()
        } catch {
            throw .invalidArgument("cannot encode the ONNX model: \(error)")
        }
    }

    enum Dimension { case symbolic(String), fixed(Int) }

    /// A float32 tensor's name and shape.
    static func valueInfo(_ name: String, _ dims: [Dimension]) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            switch d {
            case .symbolic(let s): dim.dimParam = s
            case .fixed(let n): dim.dimValue = Int64(n)
            }
            return dim
        }
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        var v = Onnx_ValueInfoProto()
        v.name = name
        v.type = type
        return v
    }
}
