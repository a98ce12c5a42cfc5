#!/usr/bin/env bash
# Regenerates Sources/FashionCLFONNX/onnx.pb.swift from onnx.proto beside it. Needs protoc (Debian
# protobuf-compiler) and swift-protobuf's protoc-gen-swift of the version Package.swift names, e.g.
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf && git checkout 1.39.0 &&
#   swift build -c release --product protoc-gen-swift
# then PROTOC_GEN_SWIFT=/path/to/.build/release/protoc-gen-swift scripts/generate-onnx-proto.sh
# The generated file is committed: a build needs neither tool.
set -euo pipefail
cd "$(dirname "$0")/../Sources/FashionCLFONNX"
plugin=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}
[ -x "$plugin" ] || { echo "generate-onnx-proto: protoc-gen-swift not found; set PROTOC_GEN_SWIFT (see this script's header)" >&2; exit 1; }
command -v protoc >/dev/null || { echo "generate-onnx-proto: protoc not found; apt-get install protobuf-compiler" >&2; exit 1; }
protoc --plugin=protoc-gen-swift="$plugin" --swift_out=. --swift_opt=Visibility=Internal onnx.proto
echo "wrote Sources/FashionCLFONNX/onnx.pb.swift"
