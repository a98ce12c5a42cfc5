import CFashionCLF
import FashionCLF

/// The model built into the library (`Sources/CFashionCLF/default-model.fclf`), fetched through the C
/// symbol: the only place fclf-classify uses it. When FashionCLF offers the built-in model itself, the
/// body becomes that one call.
func builtInClassifier() throws(FCLFError) -> Classifier {
    var size = 0
    let base = fclf__default_model(&size)
    return Classifier(try ModelFile.decode(Array(UnsafeBufferPointer(start: base, count: size)), path: "<built-in default model>"))
}
