import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import X509

/// The PEM files the front serves TLS with.
public struct TLSFiles: Sendable, Equatable {
    /// The server's certificate chain, leaf first.
    public var certificate: String
    public var key: String
    /// CAs whose certificates clients may present; without it, no client certificate is asked for.
    public var clientCA: String?

    public init(certificate: String, key: String, clientCA: String? = nil) {
        self.certificate = certificate
        self.key = key
        self.clientCA = clientCA
    }
}

/// The front's TLS: read from `files` at start and again on `reload()` (the server's SIGHUP), so a renewed
/// certificate is served to new connections while those already open go on with the one they began with.
///
/// TLS 1.2 and 1.3 only; under 1.2, only forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20).
/// With a client CA, a client may present a certificate: one that does not verify against the CA ends
/// the handshake; one that verifies is available to the routes (see `ClientOrigin.certificate`), and
/// which routes require one is theirs to decide (the dashboard is reached without one).
public final class FrontTLS: Sendable {
    public let files: TLSFiles
    private let context: NIOLockedValueBox<NIOSSLContext>

    public init(files: TLSFiles) throws(TLSSetupError) {
        self.files = files
        context = NIOLockedValueBox(try Self.load(files))
    }

    /// Reads the files again; on failure the current certificate stays in use.
    public func reload() throws(TLSSetupError) {
        let fresh = try Self.load(files)
        context.withLockedValue { $0 = fresh }
    }

    var current: NIOSSLContext { context.withLockedValue { $0 } }

    public var requiresClientCertificates: Bool { files.clientCA != nil }

    static let ciphers: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    static func load(_ files: TLSFiles) throws(TLSSetupError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMBytes(try read(files.certificate, "tls_cert")) } catch let error as TLSSetupError {
            throw error
        } catch {
            throw TLSSetupError("tls_cert", files.certificate, "is not a PEM certificate chain")
        }
        guard !chain.isEmpty else { throw TLSSetupError("tls_cert", files.certificate, "holds no certificate") }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(bytes: try read(files.key, "tls_key"), format: .pem) } catch let error as TLSSetupError {
            throw error
        } catch {
            throw TLSSetupError("tls_key", files.key, "is not a PEM private key")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuiteValues = ciphers
        if let clientCA = files.clientCA {
            let roots: [NIOSSLCertificate]
            do { roots = try NIOSSLCertificate.fromPEMBytes(try read(clientCA, "tls_client_ca")) } catch let error as TLSSetupError {
                throw error
            } catch {
                throw TLSSetupError("tls_client_ca", clientCA, "is not a PEM certificate file")
            }
            guard !roots.isEmpty else { throw TLSSetupError("tls_client_ca", clientCA, "holds no certificate") }
            configuration.trustRoots = .certificates(roots)
            configuration.certificateVerification = .optionalVerification
            configuration.sendCANameList = true
        }
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw TLSSetupError("tls_key", files.key, "does not match the certificate in \(files.certificate), or TLS could not be set up")
        }
    }

    /// A TLS file's bytes, from a regular file of at most 1 MiB. Opened without blocking and checked on the
    /// open descriptor, so a FIFO, a device or a file swapped for one after a check cannot make the read wait.
    static func read(_ path: String, _ setting: String) throws(TLSSetupError) -> [UInt8] {
        let limit = 1 << 20
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw TLSSetupError(setting, path, "cannot be opened") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw TLSSetupError(setting, path, "is not a regular file")
        }
        var bytes = [UInt8](repeating: 0, count: min(Int(info.st_size), limit) + 1)
        var total = 0
        while total < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw TLSSetupError(setting, path, "cannot be read") }
            if count == 0 { break }
            total += count
        }
        guard total <= limit else { throw TLSSetupError(setting, path, "is larger than 1 MiB") }
        return Array(bytes[..<total])
    }

    /// The verified certificate a connection's client presented, as the audit names it.
    static func clientCertificate(of channel: any Channel) -> ClientCertificate? {
        guard let handler = try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
            let certificate = handler.peerCertificate, let der = try? certificate.toDERBytes()
        else { return nil }
        let subject = (try? Certificate(derEncoded: der))?.subject.description ?? "unknown"
        let fingerprint = SHA256.hash(data: der).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
        return ClientCertificate(subject: subject, fingerprint: fingerprint)
    }
}

/// A TLS file that cannot be used, named by its setting.
public struct TLSSetupError: Error, CustomStringConvertible {
    public let setting: String
    public let path: String
    public let problem: String

    init(_ setting: String, _ path: String, _ problem: String) {
        self.setting = setting
        self.path = path
        self.problem = problem
    }

    public var description: String { "[server] \(setting): \(path) \(problem)" }
}
