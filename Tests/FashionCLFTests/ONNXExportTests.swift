// fclf-export's ONNX, read back with the same protobuf library: the graph follows the inference plan, the
// initializers hold the classifier's (folded) values bit for bit, and the interface is the documented one.
// Agreement with ONNX Runtime on the test set is Benchmarks/peers/onnx_check.py's job (it needs onnxruntime).
@testable import FashionCLF
@testable import FashionCLFONNX
import Foundation
import Testing

@Suite("ONNX export")
struct ONNXExportTests {
    func roundTrip(_ classifier: Classifier) throws -> Onnx_ModelProto {
        try Onnx_ModelProto(serializedBytes: try ONNXExport.model(classifier))
    }

    @Test func seedCNNGraphAndValues() throws {
        let classifier = try Classifier(contentsOf: packageRoot + "/Tests/FashionCLFTests/Fixtures/seed-cnn-dea59f8.fclf")
        let m = try roundTrip(classifier)
        #expect(m.irVersion == 9 && m.opsetImport.first?.version == 17 && m.producerName == "fashionclf")
        #expect(m.graph.node.map(\.opType) == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Softmax"])
        #expect(m.graph.input.first?.name == "x" && m.graph.output.first?.name == "probabilities")
        #expect(m.graph.input[0].type.tensorType.shape.dim.map(\.dimValue) == [0, 1, 28, 28])
        #expect(m.graph.input[0].type.tensorType.shape.dim[0].dimParam == "n")
        // Every value the classifier computes with is an initializer, in order, with the same bits.
        let expected = classifier.stepValues.flatMap(\.values)
        #expect(m.graph.initializer.count == expected.count)
        for (t, e) in zip(m.graph.initializer, expected) {
            #expect(t.dims == e.shape.map(Int64.init) && t.dataType == 1)
            let values = t.rawData.withUnsafeBytes { raw in
                (0..<raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
            #expect(values == e.values)
        }
        #expect(m.metadataProps.first { $0.key == "fashionclf_metadata" }?.value == classifier.metadataJSON)
    }

    @Test("the built-in model exports: its initializers are its inference values")
    func builtInExports() throws {
        let classifier = try Classifier.builtIn()
        let m = try roundTrip(classifier)
        // One initializer per stored value, and the temperature's scalar when the model is calibrated.
        let calibrated = m.graph.node.contains { $0.opType == "Div" }
        #expect(m.graph.node.last?.opType == "Softmax" && m.graph.initializer.count == classifier.stepValues.flatMap(\.values).count + (calibrated ? 1 : 0))
    }

    @Test("BatchNorm folds away; a BatchNorm after a ReLU, global pooling and the temperature are exported")
    func everyLayerKind() throws {
        var rng = SplitMix64(seed: 4)
        let specs: [LayerSpec] = [
            .conv2d(inChannels: 1, outChannels: 4, kernelSize: 3, padding: .same, activation: .none), .batchNorm(channels: 4), .relu,
            .maxPool2x2, .conv2d(inChannels: 4, outChannels: 6, kernelSize: 3, padding: .valid, activation: .relu),
            .batchNorm(channels: 6), .dropout(rate: 0.2), .globalAvgPool, .dense(inputSize: 6, outputSize: 10, activation: .none),
            .temperature(0.7),
        ]
        let net = try Sequential(name: "all", inputShape: ModelKind.imageShape, specs: specs, rng: &rng)
        let m = try roundTrip(Classifier(net))
        #expect(m.graph.node.map(\.opType) == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "BatchNormalization", "GlobalAveragePool",
                                              "Flatten", "Gemm", "Div", "Softmax"])
        let pads = m.graph.node[0].attribute.first { $0.name == "pads" }?.ints
        #expect(pads == [1, 1, 1, 1])
        // An even 'same' kernel pads only below and right (top, left, bottom, right in ONNX's order).
        let even = try Sequential(name: "even", inputShape: ModelKind.imageShape, specs: [
            .conv2d(inChannels: 1, outChannels: 2, kernelSize: 4, padding: .same, activation: .relu), .flatten,
            .dense(inputSize: 2 * 28 * 28, outputSize: 10, activation: .none)], rng: &rng)
        #expect(try roundTrip(Classifier(even)).graph.node[0].attribute.first { $0.name == "pads" }?.ints == [1, 1, 2, 2])
    }

    @Test("a residual block exports as an Add of the block's last output and its input")
    func residualBlock() throws {
        var rng = SplitMix64(seed: 5)
        let net = try Sequential(name: "res", inputShape: ModelKind.imageShape, specs: [
            .conv2d(inChannels: 1, outChannels: 4, kernelSize: 3, padding: .same, activation: .relu), .shortcut,
            .conv2d(inChannels: 4, outChannels: 4, kernelSize: 3, padding: .same, activation: .none), .batchNorm(channels: 4),
            .addShortcut, .relu, .globalAvgPool, .dense(inputSize: 4, outputSize: 10, activation: .none)], rng: &rng)
        let m = try roundTrip(Classifier(net))
        #expect(m.graph.node.map(\.opType) == ["Conv", "Relu", "Conv", "Add", "Relu", "GlobalAveragePool", "Flatten", "Gemm", "Softmax"])
        let add = m.graph.node[3]
        #expect(add.input == [m.graph.node[2].output[0], m.graph.node[1].output[0]], "\(add.input)")
        // A block from [4, 1, 1] planes through a dense layer: the kept input is flattened to the dense output's rank.
        let mixed = try Sequential(name: "mixed", inputShape: ModelKind.imageShape, specs: [
            .conv2d(inChannels: 1, outChannels: 4, kernelSize: 3, padding: .same, activation: .relu), .maxPool2x2, .maxPool2x2,
            .maxPool2x2, .maxPool2x2, .shortcut, .flatten, .dense(inputSize: 4, outputSize: 4, activation: .relu), .addShortcut,
            .dense(inputSize: 4, outputSize: 10, activation: .none)], rng: &rng)
        let g = try roundTrip(Classifier(mixed)).graph
        #expect(g.node.map(\.opType) == ["Conv", "Relu", "MaxPool", "MaxPool", "MaxPool", "MaxPool", "Flatten", "Gemm", "Relu", "Flatten",
                                         "Add", "Gemm", "Softmax"], "\(g.node.map(\.opType))")
        let flattenKept = g.node[9]
        #expect(flattenKept.input == [g.node[5].output[0]] && g.node[10].input == [g.node[8].output[0], flattenKept.output[0]])
    }
}
