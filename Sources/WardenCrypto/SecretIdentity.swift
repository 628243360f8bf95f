import Foundation

/// The row a sealed secret belongs to. It is bound into the ciphertext as associated data,
/// so a blob copied to another row (other id, owner or venue) no longer opens.
public struct SecretIdentity: Sendable, Equatable {
    public var kind: String
    public var id: String
    public var owner: String
    public var venue: String

    public init(kind: String, id: String, owner: String, venue: String) {
        self.kind = kind
        self.id = id
        self.owner = owner
        self.venue = venue
    }

    /// Length-prefixed fields, so no two identities encode to the same bytes.
    public var associatedData: [UInt8] {
        let fields = [kind, id, owner, venue]
        var out: [UInt8] = []
        out.reserveCapacity(16 + fields.reduce(0) { $0 + 4 + $1.utf8.count })
        out += "warden.secret.v1".utf8
        for field in fields {
            withUnsafeBytes(of: UInt32(field.utf8.count).bigEndian) { out += $0 }
            out += field.utf8
        }
        return out
    }
}
