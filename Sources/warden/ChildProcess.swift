import Dispatch
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Runs a command as a child process the way a shell would: found on PATH, exit code 127 when missing
/// and 126 when not executable, SIGINT/SIGTERM/SIGHUP forwarded, 128+N when killed by signal N.
enum ChildProcess {
    static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    enum LaunchError: Error, CustomStringConvertible {
        case notFound(String), notExecutable(String), spawnFailed(String, Int32)
        var exitCode: Int32 {
            switch self {
            case .notFound: 127
            case .notExecutable, .spawnFailed: 126
            }
        }
        var description: String {
            switch self {
            case .notFound(let command): "\(command): command not found"
            case .notExecutable(let path): "\(path): permission denied (not an executable file)"
            case .spawnFailed(let path, let code): "\(path): cannot start (\(String(cString: strerror(code))))"
            }
        }
    }

    /// Resolves `command` like a shell: a path if it has a `/`, else the first match on PATH.
    static func resolve(_ command: String, path: String?) throws(LaunchError) -> String {
        func check(_ candidate: String) throws(LaunchError) -> String? {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory) else { return nil }
            guard !isDirectory.boolValue, access(candidate, X_OK) == 0 else { throw .notExecutable(candidate) }
            return candidate
        }
        if command.contains("/") {
            guard let found = try check(command) else { throw .notFound(command) }
            return found
        }
        var denied: LaunchError?
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            do {
                if let found = try check("\(directory)/\(command)") { return found }
            } catch { denied = denied ?? error }
        }
        throw denied ?? .notFound(command)
    }

    /// Starts the child with `environment`, forwards signals to it, and returns its exit code.
    static func run(_ executable: String, arguments: [String], environment: [String: String]) async throws(LaunchError) -> Int32 {
        // Catch the forwarded signals here (instead of dying of them); the child gets default handlers.
        var sources: [any DispatchSourceSignal] = []
        for sig in forwardedSignals { signal(sig, SIG_IGN) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in forwardedSignals { sigaddset(&defaults, sig) }
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, nil, &attributes, argv, envp)
        guard spawned == 0 else { throw .spawnFailed(executable, spawned) }
        let child = pid

        let queue = DispatchQueue(label: "warden.run.signals")
        for sig in forwardedSignals {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { kill(child, sig) }
            source.resume()
            sources.append(source)
        }
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(child, &status, 0) == -1 && errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
        sources.forEach { $0.cancel() }
        let signalNumber = status & 0x7f
        return signalNumber == 0 ? (status >> 8) & 0xff : 128 + signalNumber
    }
}
