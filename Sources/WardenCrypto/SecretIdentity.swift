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
    public var associatedData: Data {
        var out = Data("warden.secret.v1".utf8)
        for field in [kind, id, owner, venue] {
            let bytes = Data(field.utf8)
            withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { out.append(contentsOf: $0) }
            out.append(bytes)
        }
        return out
    }
}
