import Foundation
import PackagePlugin

/// Compiles a target's `Resources/` folder into the target itself (`EmbeddedResources`), so the built
/// executable is one file to copy: nothing is looked up beside it at run time.
@main struct EmbedResources: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let target = target as? SourceModuleTarget else { return [] }
        let folder = target.directoryURL.appending(path: "Resources")
        let files = try Self.files(under: folder)
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedResources.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) resources of \(target.name)",
                executable: try context.tool(named: "ResourceEmbedder").url,
                arguments: [folder.path, output.path] + files,
                inputFiles: files.map { folder.appending(path: $0) }, outputFiles: [output])
        ]
    }

    /// Regular files under `folder`, as paths relative to it, sorted.
    static func files(under folder: URL) throws -> [String] {
        var files: [String] = []
        for relative in try FileManager.default.subpathsOfDirectory(atPath: folder.path) {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: folder.appending(path: relative).path, isDirectory: &isDirectory)
            if exists, !isDirectory.boolValue, !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                files.append(relative)
            }
        }
        return files.sorted()
    }
}
