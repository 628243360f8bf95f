#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A heap buffer for key material: locked in memory where the OS permits (so it is not swapped out)
/// and always overwritten with zeros when released.
public final class SecretBytes: @unchecked Sendable {
    // Immutable after init; only read through `withUnsafeBytes`, so sharing across tasks is safe.
    private let buffer: UnsafeMutableRawBufferPointer
    private let locked: Bool

    public var count: Int { exactCount }

    /// Copies `bytes` into a fresh buffer, locked unless `lock` is false. The caller remains responsible
    /// for its own copy. Unlocked buffers are for transient plaintext that is decoded into ordinary
    /// memory at once (an opened credential): locking it would protect nothing, and each lock splits the
    /// process's memory map, which costs more than the decryption.
    public init<Bytes: Collection>(copying bytes: Bytes, lock: Bool = true) where Bytes.Element == UInt8 {
        let size = max(bytes.count, 1)
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        locked = lock && mlock(buffer.baseAddress, size) == 0
        _ = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes.count]).initializeMemory(as: UInt8.self, from: bytes)
        exactCount = bytes.count
    }

    /// Fills a new buffer of `count` bytes by calling `fill` on it (used to generate or derive keys in place).
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        let size = max(count, 1)
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        locked = mlock(buffer.baseAddress, size) == 0
        exactCount = count
        do {
            try fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]))
        } catch {
            Self.wipe(buffer)
            if locked { munlock(buffer.baseAddress, size) }
            buffer.deallocate()
            throw error
        }
    }

    private let exactCount: Int

    /// Read access to the secret. Do not let the pointer escape.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: buffer[0..<exactCount]))
    }

    /// Constant-time equality with another secret.
    public func constantTimeEquals(_ other: SecretBytes) -> Bool {
        other.withUnsafeBytes { theirs in
            withUnsafeBytes { ours in ConstantTime.equals(ours, theirs) }
        }
    }

    deinit {
        Self.wipe(buffer)
        if locked { munlock(buffer.baseAddress, buffer.count) }
        buffer.deallocate()
    }

    fileprivate static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        #if canImport(Glibc)
            explicit_bzero(base, buffer.count)
        #else
            memset_s(base, buffer.count, 0, buffer.count)
        #endif
    }
}

/// Comparisons whose running time does not depend on where the inputs differ.
public enum ConstantTime {
    public static func equals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    public static func equals<A: Collection, B: Collection>(_ a: A, _ b: B) -> Bool
    where A.Element == UInt8, B.Element == UInt8 {
        let x = Array(a), y = Array(b)
        return x.withUnsafeBytes { xa in y.withUnsafeBytes { ya in equals(xa, ya) } }
    }
}

/// Zeroing of transient copies of secrets (best effort: Swift may have copied them elsewhere).
public enum Wipe {
    public static func array(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { SecretBytes.wipe($0) }
    }
}
