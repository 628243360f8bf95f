import Foundation
import HTTPTypes
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a request came from, as the front knows it: the connection's peer, the client a trusted proxy
/// names, whether the request reached Warden over TLS, and the client certificate the connection presented.
public struct ClientOrigin: Sendable {
    /// The connection's other end (a proxy, when one is in front).
    public let peer: SocketAddress?
    /// The client's address as a trusted proxy forwarded it, in canonical form; nil when the peer is not
    /// a trusted proxy or named no one.
    public let forwardedFor: String?
    /// The request came over TLS: to a trusted proxy that said so (its word decides: it is the client's
    /// leg that matters), or, when no trusted proxy named a scheme, to Warden itself.
    public let secure: Bool
    /// The certificate the client presented on Warden's TLS connection, verified against `tls_client_ca`.
    public let certificate: ClientCertificate?

    public init(peer: SocketAddress?, forwardedFor: String? = nil, secure: Bool = false, certificate: ClientCertificate? = nil) {
        self.peer = peer
        self.forwardedFor = forwardedFor
        self.secure = secure
        self.certificate = certificate
    }

    /// The client's IP address for throttles, rate limits and the audit, or "unknown".
    public var address: String { forwardedFor ?? peer?.ipAddress ?? "unknown" }
}

/// A verified client certificate, as the audit names it.
public struct ClientCertificate: Sendable, Equatable {
    /// The subject's distinguished name (`CN=agent-1,O=Desk`).
    public let subject: String
    /// SHA-256 of the certificate's DER encoding, lowercase hex.
    public let fingerprint: String

    public init(subject: String, fingerprint: String) {
        self.subject = subject
        self.fingerprint = fingerprint
    }
}

/// An IPv4 or IPv6 address as its bytes (4 or 16); an IPv4-mapped IPv6 address is its IPv4 address.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    init(bytes: [UInt8]) {
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]
        self.bytes = bytes.count == 16 && bytes.starts(with: mapped) ? Array(bytes[12...]) : bytes
    }

    /// An address written as text (`192.0.2.7`, `2001:db8::1`); nil for anything else.
    public init?(_ text: Substring) {
        guard !text.isEmpty, text.count <= 45 else { return nil }
        let string = String(text)
        var v4 = in_addr()
        if inet_pton(AF_INET, string, &v4) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, string, &v6) == 1 else { return nil }
        self.init(bytes: withUnsafeBytes(of: &v6) { Array($0) })
    }

    public init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4):
            var raw = v4.address.sin_addr
            self.init(bytes: withUnsafeBytes(of: &raw) { Array($0) })
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            self.init(bytes: withUnsafeBytes(of: &raw) { Array($0) })
        case .unixDomainSocket:
            return nil
        }
    }

    /// The canonical text (`inet_ntop`'s): what the audit records, whatever spelling the header used.
    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var raw = bytes
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard inet_ntop(family, &raw, &buffer, socklen_t(buffer.count)) != nil else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is the network of that
/// address alone.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    let base: IPAddress
    let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let base = IPAddress(parts[0]) else { return nil }
        let bits = base.bytes.count * 8
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isNumber), let prefix = Int(parts[1]), prefix <= bits else {
                return nil
            }
            self.prefix = prefix
        } else {
            prefix = bits
        }
        self.base = base
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == base.bytes.count else { return false }
        var left = prefix
        for (a, b) in zip(address.bytes, base.bytes) where left > 0 {
            let mask: UInt8 = left >= 8 ? 0xFF : ~(0xFF >> UInt8(left))
            if a & mask != b & mask { return false }
            left -= 8
        }
        return true
    }

    public var description: String { "\(base)/\(prefix)" }
}

/// The proxies whose word on the client is taken: a request from one of them names its client in the one
/// field the operator chose (`X-Forwarded-For`, with the scheme in `X-Forwarded-Proto`; or RFC 7239's
/// `Forwarded`, `for=` and `proto=`), and only that field is read: a proxy that sets one passes the other
/// on as the client wrote it. From any other peer nothing is taken, so a client cannot name itself.
public struct TrustedProxies: Sendable {
    public let networks: [IPNetwork]
    public let header: Header

    /// Which field the proxies write.
    public enum Header: String, Sendable, CaseIterable {
        case xForwardedFor = "x-forwarded-for"
        case forwarded
    }

    public init(_ networks: [IPNetwork], header: Header = .xForwardedFor) {
        self.networks = networks
        self.header = header
    }

    /// Parses `entries` (CIDRs or addresses); throws naming the first that is neither.
    public init(parsing entries: [String], header: Header = .xForwardedFor) throws(InvalidNetwork) {
        var networks: [IPNetwork] = []
        for entry in entries {
            guard let network = IPNetwork(entry) else { throw InvalidNetwork(entry: entry) }
            networks.append(network)
        }
        self.init(networks, header: header)
    }

    public struct InvalidNetwork: Error, CustomStringConvertible {
        public let entry: String
        public var description: String { "\"\(entry)\" is not an IP address or a CIDR network (10.0.0.0/8, fd00::/8)" }
    }

    public var isEmpty: Bool { networks.isEmpty }

    func trusts(_ address: IPAddress) -> Bool {
        networks.contains { $0.contains(address) }
    }

    static let forwarded = HTTPField.Name("forwarded")!
    static let forwardedFor = HTTPField.Name("x-forwarded-for")!
    static let forwardedProto = HTTPField.Name("x-forwarded-proto")!

    /// The client and scheme a trusted `peer` forwarded: walking the hops from the nearest, the first
    /// address not itself a trusted proxy is the client (a hop that is not an address ends the walk at
    /// the last trusted one); `https` is nil when the proxy named no scheme. Nil when the peer is not trusted.
    public func forwarded(peer: SocketAddress?, headers: HTTPFields) -> (client: String?, https: Bool?)? {
        guard !networks.isEmpty, let peer, let peerAddress = IPAddress(peer), trusts(peerAddress) else { return nil }
        let elements: [Substring]
        let proto: Substring?
        switch header {
        case .forwarded:
            let hops = headers[values: Self.forwarded].flatMap { $0.split(separator: ",") }.map(Self.parameters)
            elements = hops.compactMap { $0["for"] }
            proto = hops.last?["proto"]
        case .xForwardedFor:
            elements = headers[values: Self.forwardedFor].flatMap { $0.split(separator: ",") }
            proto = headers[values: Self.forwardedProto].last?.split(separator: ",").last
        }
        var client: IPAddress?
        for hop in elements.reversed() {
            guard let address = Self.address(hop) else { break }
            client = address
            if !trusts(address) { break }
        }
        let https = proto.map { $0.trimmingCharacters(in: .whitespaces).lowercased() == "https" }
        return (client?.description, https)
    }

    /// A `Forwarded` element's parameters (`for=…;proto=…`), names lowercased, quotes removed.
    static func parameters(_ element: Substring) -> [String: Substring] {
        var result: [String: Substring] = [:]
        for pair in element.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            var value = parts[1].trimmingCharacters(in: .whitespaces)[...]
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
            result[parts[0].trimmingCharacters(in: .whitespaces).lowercased()] = value
        }
        return result
    }

    /// A hop's address: bare, with a port (`192.0.2.7:4711`), or bracketed IPv6 with or without one.
    static func address(_ hop: Substring) -> IPAddress? {
        let text = hop.trimmingCharacters(in: .whitespaces)[...]
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.first == ":" && rest.dropFirst().allSatisfy(\.isNumber)) else { return nil }
            return IPAddress(text[text.index(after: text.startIndex)..<close])
        }
        if let address = IPAddress(text) { return address }
        // IPv4 with a port: exactly one colon.
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber) else { return nil }
        return IPAddress(parts[0]).flatMap { $0.bytes.count == 4 ? $0 : nil }
    }
}
