import Foundation

/// What a boot finds where a SQLite store should be, checked before anything opens or creates it: a
/// missing file is a first boot; anything else must be a SQLite database this user can read and write,
/// in a directory where SQLite can make its journal. An empty file is not a new store (it may be the
/// remains of one): a new vault is never made over it.
enum StoreFile {
    static let header = Array("SQLite format 3\0".utf8)

    static func check(_ path: String) throws(StoreError) {
        let manager = FileManager.default
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .unusable("the directory of the SQLite store \(directory) does not exist")
        }
        guard access(directory, R_OK | W_OK | X_OK) == 0 else {
            throw .unusable("cannot write in \(directory) (\(Self.reason())): SQLite keeps its journal beside the store")
        }
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        guard !isDirectory.boolValue else { throw .unusable("\(path) is a directory, not a SQLite store") }
        guard access(path, R_OK | W_OK) == 0 else {
            throw .unusable("cannot read and write the SQLite store \(path) (\(Self.reason()))")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .unusable("cannot open the SQLite store \(path)")
        }
        defer { try? handle.close() }
        let start = (try? handle.read(upToCount: header.count)).map { Array($0) } ?? []
        if start.isEmpty {
            throw .unusable(
                "\(path) is empty (0 bytes), not a Warden store: restore it from a backup, or move it away to create a new vault")
        }
        guard start == header else { throw .unusable("\(path) is not a SQLite database") }
    }

    private static func reason() -> String { String(cString: strerror(errno)) }
}
