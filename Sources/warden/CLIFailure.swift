import ArgumentParser
import Foundation

/// Turns any error into one line on stderr (`warden: …`) and exit status 1.
struct CLIFailure: Error, CustomStringConvertible {
    let message: String

    init(_ error: any Error) {
        if let failure = error as? CLIFailure {
            message = failure.message
        } else {
            message = String(describing: error)
        }
    }

    init(message: String) { self.message = message }

    var description: String { message }
}

extension CLIFailure {
    /// Prints the message and exits 1; used where ArgumentParser's own error formatting would add noise.
    static func exit(_ error: any Error) -> Never {
        FileHandle.standardError.write(Data("warden: \(CLIFailure(error).message)\n".utf8))
        Foundation.exit(1)
    }
}
