import Foundation
import WardenCrypto

enum Terminal {
    /// Reads a line from the terminal with echo off. Returns nil when stdin is not a terminal.
    static func readSecret(prompt: String) -> SecretBytes? {
        guard isatty(STDIN_FILENO) == 1 else { return nil }
        FileHandle.standardError.write(Data(prompt.utf8))
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        var bytes: [UInt8] = []
        defer { Wipe.array(&bytes) }
        while true {
            var c: UInt8 = 0
            guard read(STDIN_FILENO, &c, 1) == 1, c != UInt8(ascii: "\n") else { break }
            if c != UInt8(ascii: "\r") { bytes.append(c) }
        }
        return SecretBytes(copying: bytes)
    }
}
