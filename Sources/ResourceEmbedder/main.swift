import Foundation

// Writes a Swift file holding the given files of a folder: `ResourceEmbedder FOLDER OUTPUT FILE…`
// (run by the EmbedResources build plugin). Each file is a base64 literal, decoded once on first use.
let arguments = CommandLine.arguments.dropFirst()
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: ResourceEmbedder FOLDER OUTPUT FILE...\n".utf8))
    exit(2)
}
let folder = URL(fileURLWithPath: arguments[arguments.startIndex])
let output = URL(fileURLWithPath: arguments[arguments.startIndex + 1])
var source = """
    // Generated at build time from the target's Resources folder by the EmbedResources plugin.
    import Foundation

    enum EmbeddedResources {
        /// Each resource's bytes, by its path under Resources/.
        static let files: [String: Data] = encoded.mapValues { Data(base64Encoded: $0)! }

        private static let encoded: [String: String] = [

    """
for name in arguments.dropFirst(2) {
    let data = try Data(contentsOf: folder.appendingPathComponent(name))
    let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    source += "        \"\(escaped)\": \"\(data.base64EncodedString())\",\n"
}
source += arguments.count == 2 ? "        :\n    ]\n}\n" : "    ]\n}\n"
try Data(source.utf8).write(to: output, options: .atomic)
