import FashionCLF

/// A minimal SVG writer: rectangles, lines, polylines, circles and text, with attribute escaping. Enough
/// for the report's charts without a plotting dependency; the output is well-formed XML (tested).
public struct SVG {
    public let width: Double, height: Double
    private var body: [String] = []

    public init(width: Double, height: Double) {
        self.width = width; self.height = height
    }

    /// Text for XML character data and attribute values.
    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    static func n(_ x: Double) -> String { x.isFinite ? Text.fixed(x, 2) : "0" }

    public mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil,
                              title: String? = nil) {
        let s = stroke.map { " stroke=\"\(SVG.escape($0))\"" } ?? ""
        let t = title.map { "<title>\(SVG.escape($0))</title>" } ?? ""
        body.append("<rect x=\"\(SVG.n(x))\" y=\"\(SVG.n(y))\" width=\"\(SVG.n(max(0, w)))\" height=\"\(SVG.n(max(0, h)))\" fill=\"\(SVG.escape(fill))\"\(s)>\(t)</rect>")
    }

    public mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1,
                              dash: String? = nil) {
        let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        body.append("<line x1=\"\(SVG.n(x1))\" y1=\"\(SVG.n(y1))\" x2=\"\(SVG.n(x2))\" y2=\"\(SVG.n(y2))\" stroke=\"\(SVG.escape(stroke))\" stroke-width=\"\(SVG.n(width))\"\(d)/>")
    }

    public mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2, dash: String? = nil) {
        let p = points.map { "\(SVG.n($0.0)),\(SVG.n($0.1))" }.joined(separator: " ")
        let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        body.append("<polyline points=\"\(p)\" fill=\"none\" stroke=\"\(SVG.escape(stroke))\" stroke-width=\"\(SVG.n(width))\"\(d)/>")
    }

    public mutating func circle(_ x: Double, _ y: Double, _ r: Double, fill: String) {
        body.append("<circle cx=\"\(SVG.n(x))\" cy=\"\(SVG.n(y))\" r=\"\(SVG.n(r))\" fill=\"\(SVG.escape(fill))\"/>")
    }

    public enum Anchor: String { case start, middle, end }

    public mutating func text(_ x: Double, _ y: Double, _ s: String, size: Double = 12, anchor: Anchor = .start,
                              fill: String = "#222", bold: Bool = false, rotate: Double? = nil) {
        let r = rotate.map { " transform=\"rotate(\(SVG.n($0)) \(SVG.n(x)) \(SVG.n(y)))\"" } ?? ""
        let b = bold ? " font-weight=\"bold\"" : ""
        body.append("<text x=\"\(SVG.n(x))\" y=\"\(SVG.n(y))\" font-size=\"\(SVG.n(size))\" text-anchor=\"\(anchor.rawValue)\" fill=\"\(SVG.escape(fill))\"\(b)\(r)>\(SVG.escape(s))</text>")
    }

    /// The document; `standalone` adds the XML declaration for a .svg file (omit it when inlining in HTML).
    public func render(standalone: Bool = false) -> String {
        (standalone ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" : "")
            + "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(SVG.n(width))\" height=\"\(SVG.n(height))\" viewBox=\"0 0 \(SVG.n(width)) \(SVG.n(height))\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
            + body.joined(separator: "\n") + "\n</svg>\n"
    }
}
