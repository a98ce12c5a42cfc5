// The C API of libfashionclf.so (Sources/CFashionCLF/include/fashionclf.h is the contract).
// Every entry point validates its arguments, catches every error at the boundary, maps it to an
// fclf_status and records a one-line detail for fclf_last_error(); nothing here traps on user input.
import CFashionCLF
import CKernels
import FashionCLF
import FashionCLFPhotos

#if canImport(Glibc)
import Glibc
#endif

/// Largest batch one fclf_predict_batch call accepts: count * 784 bytes stays far from overflow.
let maxBatch = 1 << 26

/// What an fclf_model handle points to: the classifier and the C string fclf_model_metadata returns.
final class CModel {
    let classifier: Classifier
    let metadata: UnsafeMutablePointer<CChar>

    init(_ classifier: Classifier) {
        self.classifier = classifier
        metadata = strdup(classifier.metadataJSON)
    }

    deinit { free(metadata) }
}

@inline(__always)
func fail(_ status: fclf_status, _ message: String) -> fclf_status {
    message.withCString { fclf__set_error($0) }
    return status
}

func status(of error: FCLFError) -> fclf_status {
    switch error {
    case .datasetMissing, .io: return FCLF_ERR_IO
    case .badDataFile, .modelFile, .photo: return FCLF_ERR_FORMAT
    case .resourceLimit: return FCLF_ERR_NO_MEMORY
    case .invalidArgument: return FCLF_ERR_INVALID_ARGUMENT
    case .numeric: return FCLF_ERR_NUMERIC
    }
}

/// A model this library can serve: one 28x28 channel in, 10 classes out.
func classifier(from bytes: [UInt8], path: String) throws(FCLFError) -> Classifier {
    try servable(Classifier(ModelFile.decode(bytes, path: path)), path: path)
}

func servable(_ model: Classifier, path: String) throws(FCLFError) -> Classifier {
    guard model.inputShape == Shape(n: 1, c: 1, h: 28, w: 28), model.classes == 10 else {
        throw .modelFile(path: path, reason: "model takes \(model.inputShape) to \(model.classes) classes, not 28x28 grayscale to 10")
    }
    return model
}

func publish(_ model: Classifier, _ out: UnsafeMutablePointer<OpaquePointer?>) -> fclf_status {
    out.pointee = OpaquePointer(Unmanaged.passRetained(CModel(model)).toOpaque())
    return FCLF_OK
}

func handleObject(_ handle: OpaquePointer) -> CModel {
    Unmanaged<CModel>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
}

func model(_ handle: OpaquePointer) -> Classifier { handleObject(handle).classifier }

@_cdecl("fclf_model_load")
public func capiModelLoad(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> fclf_status {
    fclf__clear_error()
    guard let out else { return fail(FCLF_ERR_INVALID_ARGUMENT, "fclf_model_load: out is NULL; pass the address of an fclf_model pointer") }
    out.pointee = nil
    guard let path else { return fail(FCLF_ERR_INVALID_ARGUMENT, "fclf_model_load: path is NULL; pass a model file written by fclf-train --out") }
    let p = String(cString: path)
    do {
        let bytes = try FileIO.read(p, limit: 1 << 30)
        return publish(try classifier(from: bytes, path: p), out)
    } catch {
        return fail(status(of: error), "fclf_model_load: \(error)")
    }
}

@_cdecl("fclf_model_load_default")
public func capiModelLoadDefault(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> fclf_status {
    fclf__clear_error()
    guard let out else { return fail(FCLF_ERR_INVALID_ARGUMENT, "fclf_model_load_default: out is NULL; pass the address of an fclf_model pointer") }
    out.pointee = nil
    do {
        return publish(try servable(Classifier.builtIn(), path: Classifier.builtInPath), out)
    } catch {
        return fail(FCLF_ERR_INTERNAL, "fclf_model_load_default: the built-in model is damaged (\(error)); rebuild the library")
    }
}

@_cdecl("fclf_model_free")
public func capiModelFree(_ handle: OpaquePointer?) {
    guard let handle else { return }
    Unmanaged<CModel>.fromOpaque(UnsafeRawPointer(handle)).release()
}

@_cdecl("fclf_model_load_memory")
public func capiModelLoadMemory(_ data: UnsafeRawPointer?, _ size: Int, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> fclf_status {
    fclf__clear_error()
    guard let out else { return fail(FCLF_ERR_INVALID_ARGUMENT, "fclf_model_load_memory: out is NULL; pass the address of an fclf_model pointer") }
    out.pointee = nil
    guard let data else { return fail(FCLF_ERR_INVALID_ARGUMENT, "fclf_model_load_memory: data is NULL; pass the bytes of a model file") }
    // size_t arrives as Int: a "negative" value is a huge size_t.
    guard size >= 0, size <= 1 << 30 else {
        return fail(FCLF_ERR_INVALID_ARGUMENT, "fclf_model_load_memory: size \(UInt(bitPattern: size)) is above the 1 GiB a model file may have")
    }
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    do {
        return publish(try classifier(from: bytes, path: "<model in memory>"), out)
    } catch {
        return fail(status(of: error), "fclf_model_load_memory: \(error)")
    }
}

@_cdecl("fclf_model_metadata")
public func capiModelMetadata(_ handle: OpaquePointer?) -> UnsafePointer<CChar>? {
    guard let handle else { return nil }
    return UnsafePointer(handleObject(handle).metadata)
}

@_cdecl("fclf_set_threads")
public func capiSetThreads(_ n: Int32) {
    fclf_set_default_threads(n)
}

/// The flags this version defines (fashionclf.h).
let flipAverage = UInt32(FCLF_FLIP_AVERAGE)
let knownFlags = flipAverage

/// A one-line refusal of flag bits this version does not define, or nil. Checked before any input is read.
func unknownFlags(_ what: String, _ flags: UInt32) -> fclf_status? {
    guard flags & ~knownFlags != 0 else { return nil }
    return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): flags 0x\(String(flags, radix: 16)) has bits this library (\(String(cString: fclf_version()))) does not define; pass 0 or FCLF_FLIP_AVERAGE")
}

/// One 28x28 image through the model: fclf_predict when `unsure` is nil and flags are 0, else fclf_classify's
/// decision as fclf-classify makes it (`Classifier.flipAveraged`, `Classifier.isUnsure`). `what` names the
/// entry point in messages. Outputs are computed into locals first: on failure none is touched.
func classifyImage(_ what: String, _ handle: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, flags: UInt32,
                   _ probabilities: UnsafeMutablePointer<Float>?, _ label: UnsafeMutablePointer<Int32>?,
                   _ unsure: UnsafeMutablePointer<Int32>?) -> fclf_status {
    guard let handle else { return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): model is NULL; load one with fclf_model_load or fclf_model_load_default") }
    guard let pixels else { return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): pixels is NULL; pass 784 bytes, one 28x28 image") }
    if let refused = unknownFlags(what, flags) { return refused }
    let classifier = model(handle), side = Int(FCLF_IMAGE_SIDE)
    // fclf_predict's path allocates nothing: the probabilities live in a tuple.
    var probs = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
    var l: Int32 = 0, u = false
    do {
        try withUnsafeMutableBytes(of: &probs) { raw throws(FCLFError) in
            let p = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            try classifier.predict(pixels, count: 1, probabilities: p, labels: &l)
            if flags & flipAverage != 0 {
                let mirror = try classifier.probabilities(Classifier.mirrored(UnsafeBufferPointer(start: pixels, count: side * side), width: side))
                let averaged = Classifier.flipAveraged(Array(UnsafeBufferPointer(start: p, count: 10)), mirrored: mirror)
                p.update(from: averaged.probabilities, count: 10)
                l = Int32(averaged.label)
                u = averaged.unsure
            } else {
                u = Classifier.isUnsure(UnsafeBufferPointer(start: p, count: 10))
            }
            probabilities?.update(from: p, count: 10)
        }
    } catch {
        return fail(status(of: error), "\(what): \(error)")
    }
    label?.pointee = l
    unsure?.pointee = u ? 1 : 0
    return FCLF_OK
}

@_cdecl("fclf_predict")
public func capiPredict(_ handle: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, _ probabilities: UnsafeMutablePointer<Float>?,
                        _ label: UnsafeMutablePointer<Int32>?) -> fclf_status {
    fclf__clear_error()
    return classifyImage("fclf_predict", handle, pixels, flags: 0, probabilities, label, nil)
}

@_cdecl("fclf_classify")
public func capiClassify(_ handle: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, _ flags: UInt32,
                         _ probabilities: UnsafeMutablePointer<Float>?, _ label: UnsafeMutablePointer<Int32>?,
                         _ unsure: UnsafeMutablePointer<Int32>?) -> fclf_status {
    fclf__clear_error()
    return classifyImage("fclf_classify", handle, pixels, flags: flags, probabilities, label, unsure)
}

@_cdecl("fclf_predict_batch")
public func capiPredictBatch(_ handle: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, _ count: Int,
                             _ probabilities: UnsafeMutablePointer<Float>?, _ labels: UnsafeMutablePointer<Int32>?) -> fclf_status {
    fclf__clear_error()
    guard let handle else { return fail(FCLF_ERR_INVALID_ARGUMENT, "fclf_predict_batch: model is NULL; load one with fclf_model_load or fclf_model_load_default") }
    guard let pixels else { return fail(FCLF_ERR_INVALID_ARGUMENT, "fclf_predict_batch: pixels is NULL; pass count * 784 bytes") }
    // size_t arrives as Int: a "negative" value is a huge size_t.
    guard count >= 1, count <= maxBatch else {
        return fail(FCLF_ERR_INVALID_ARGUMENT, "fclf_predict_batch: count \(UInt(bitPattern: count)) is outside 1...\(maxBatch); split larger work into several calls")
    }
    do {
        try model(handle).predict(pixels, count: count, probabilities: probabilities, labels: labels)
    } catch {
        return fail(status(of: error), "fclf_predict_batch: \(error)")
    }
    return FCLF_OK
}

/// Runs a decoded photo through the preprocessing and `classifyImage`; `what` names the entry point in messages.
func classifyPhoto(_ what: String, _ handle: OpaquePointer, flags: UInt32, _ probabilities: UnsafeMutablePointer<Float>?,
                   _ label: UnsafeMutablePointer<Int32>?, _ unsure: UnsafeMutablePointer<Int32>?,
                   _ load: () throws(FCLFError) -> Photo) -> fclf_status {
    let prepared: PreparedImage
    do {
        prepared = Preprocessor.prepare(try load())
    } catch {
        return fail(status(of: error), "\(what): \(error)")
    }
    return prepared.pixels.withUnsafeBufferPointer { classifyImage(what, handle, $0.baseAddress, flags: flags, probabilities, label, unsure) }
}

func classifyImageFile(_ what: String, _ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?, flags: UInt32,
                       _ probabilities: UnsafeMutablePointer<Float>?, _ label: UnsafeMutablePointer<Int32>?,
                       _ unsure: UnsafeMutablePointer<Int32>?) -> fclf_status {
    fclf__clear_error()
    guard let handle else { return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): model is NULL; load one with fclf_model_load or fclf_model_load_default") }
    guard let path else { return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): path is NULL; pass a PNG or JPEG file") }
    if let refused = unknownFlags(what, flags) { return refused }
    return classifyPhoto(what, handle, flags: flags, probabilities, label, unsure) { () throws(FCLFError) in try Photo.load(String(cString: path)) }
}

func classifyImageMemory(_ what: String, _ handle: OpaquePointer?, _ data: UnsafeRawPointer?, _ size: Int, flags: UInt32,
                         _ probabilities: UnsafeMutablePointer<Float>?, _ label: UnsafeMutablePointer<Int32>?,
                         _ unsure: UnsafeMutablePointer<Int32>?) -> fclf_status {
    fclf__clear_error()
    guard let handle else { return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): model is NULL; load one with fclf_model_load or fclf_model_load_default") }
    guard let data else { return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): data is NULL; pass the bytes of a PNG or JPEG file") }
    if let refused = unknownFlags(what, flags) { return refused }
    guard size >= 0, size <= Photo.maxFileBytes else {
        return fail(FCLF_ERR_NO_MEMORY, "\(what): size \(UInt(bitPattern: size)) is above the \(Photo.maxFileBytes >> 20) MB a photo may have")
    }
    return classifyPhoto(what, handle, flags: flags, probabilities, label, unsure) { () throws(FCLFError) in
        try Photo.decode(UnsafeRawBufferPointer(start: data, count: size))
    }
}

func classifyPixels(_ what: String, _ handle: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32,
                    _ rowBytes: Int, _ format: fclf_pixel_format, flags: UInt32, _ probabilities: UnsafeMutablePointer<Float>?,
                    _ label: UnsafeMutablePointer<Int32>?, _ unsure: UnsafeMutablePointer<Int32>?) -> fclf_status {
    fclf__clear_error()
    guard let handle else { return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): model is NULL; load one with fclf_model_load or fclf_model_load_default") }
    guard let pixels else { return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): pixels is NULL; pass the frame's first row") }
    if let refused = unknownFlags(what, flags) { return refused }
    guard let pixelFormat = Photo.PixelFormat(rawValue: Int(format.rawValue)) else {
        return fail(FCLF_ERR_INVALID_ARGUMENT, "\(what): format \(format.rawValue) is not an fclf_pixel_format; use FCLF_PIXEL_GRAY8 ... FCLF_PIXEL_BGRA8")
    }
    let w = Int(width), h = Int(height)
    // The frame's extent, checked before a byte of it is read.
    let frame: UnsafeRawBufferPointer
    do {
        frame = UnsafeRawBufferPointer(start: pixels, count: try Photo.frameBytes(width: w, height: h, rowBytes: rowBytes, format: pixelFormat))
    } catch {
        return fail(status(of: error), "\(what): \(error)")
    }
    return classifyPhoto(what, handle, flags: flags, probabilities, label, unsure) { () throws(FCLFError) in
        try Photo(frame: frame, width: w, height: h, rowBytes: rowBytes, format: pixelFormat)
    }
}

@_cdecl("fclf_predict_image_file")
public func capiPredictImageFile(_ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ probabilities: UnsafeMutablePointer<Float>?,
                                 _ label: UnsafeMutablePointer<Int32>?) -> fclf_status {
    classifyImageFile("fclf_predict_image_file", handle, path, flags: 0, probabilities, label, nil)
}

@_cdecl("fclf_classify_image_file")
public func capiClassifyImageFile(_ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ flags: UInt32,
                                  _ probabilities: UnsafeMutablePointer<Float>?, _ label: UnsafeMutablePointer<Int32>?,
                                  _ unsure: UnsafeMutablePointer<Int32>?) -> fclf_status {
    classifyImageFile("fclf_classify_image_file", handle, path, flags: flags, probabilities, label, unsure)
}

@_cdecl("fclf_predict_image_memory")
public func capiPredictImageMemory(_ handle: OpaquePointer?, _ data: UnsafeRawPointer?, _ size: Int,
                                   _ probabilities: UnsafeMutablePointer<Float>?, _ label: UnsafeMutablePointer<Int32>?) -> fclf_status {
    classifyImageMemory("fclf_predict_image_memory", handle, data, size, flags: 0, probabilities, label, nil)
}

@_cdecl("fclf_classify_image_memory")
public func capiClassifyImageMemory(_ handle: OpaquePointer?, _ data: UnsafeRawPointer?, _ size: Int, _ flags: UInt32,
                                    _ probabilities: UnsafeMutablePointer<Float>?, _ label: UnsafeMutablePointer<Int32>?,
                                    _ unsure: UnsafeMutablePointer<Int32>?) -> fclf_status {
    classifyImageMemory("fclf_classify_image_memory", handle, data, size, flags: flags, probabilities, label, unsure)
}

@_cdecl("fclf_predict_pixels")
public func capiPredictPixels(_ handle: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32,
                              _ rowBytes: Int, _ format: fclf_pixel_format, _ probabilities: UnsafeMutablePointer<Float>?,
                              _ label: UnsafeMutablePointer<Int32>?) -> fclf_status {
    classifyPixels("fclf_predict_pixels", handle, pixels, width, height, rowBytes, format, flags: 0, probabilities, label, nil)
}

@_cdecl("fclf_classify_pixels")
public func capiClassifyPixels(_ handle: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32,
                               _ rowBytes: Int, _ format: fclf_pixel_format, _ flags: UInt32,
                               _ probabilities: UnsafeMutablePointer<Float>?, _ label: UnsafeMutablePointer<Int32>?,
                               _ unsure: UnsafeMutablePointer<Int32>?) -> fclf_status {
    classifyPixels("fclf_classify_pixels", handle, pixels, width, height, rowBytes, format, flags: flags, probabilities, label, unsure)
}
