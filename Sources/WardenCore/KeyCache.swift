import Dispatch
import Synchronization
import WardenStore

/// Agent keys as the gateway resolved them, with their credential already opened, and their owners' risk
/// settings, so a call needs no store query and no decryption. Every entry carries the store revision it was read at (see
/// `StoreRevision`); once the revision moves, all entries go. The server syncs after each change it
/// makes itself, and polls for changes made by other processes (the CLI, a second server). Hashes the
/// store does not hold are remembered the same way, so a wrong key is refused without a query.
public final class KeyCache: Sendable {
    struct Entry: Sendable {
        let resolved: ResolvedKey
        let secret: [String: String]
        /// When a call last used it (monotonic nanoseconds): an entry idle past `idle` is dropped.
        var lastUsed: UInt64 = 0
    }

    private struct State {
        /// The revision the entries were read at; nil while unknown (nothing is cached then).
        var revision: Int64?
        var entries: [Slot: Entry] = [:]
        /// Hashes of keys the store does not hold, so an agent retrying with a wrong key costs no query.
        var unknown: Set<String> = []
        /// Owners' risk settings, by user id: every order reads its owner's.
        var profiles: [String: ProfileRecord] = [:]

        mutating func dropAll() {
            entries.removeAll(keepingCapacity: true)
            unknown.removeAll(keepingCapacity: true)
            profiles.removeAll(keepingCapacity: true)
        }

        /// Moves to a newer revision (dropping everything older); false when `revision` is the older one.
        mutating func accept(_ revision: Int64) -> Bool {
            if let current = self.revision, revision > current {
                dropAll()
                self.revision = revision
            }
            return revision == self.revision
        }
    }

    /// A key's hash and the venue it was resolved for (its credential differs by venue).
    struct Slot: Hashable {
        let hash: String
        let venue: String
    }

    private let state = Mutex(State())
    private let database: Database
    /// How long an opened credential stays in memory unused.
    let idleNanos: UInt64
    static let capacity = 10_000

    public init(database: Database, idle: Duration = .seconds(60)) {
        self.database = database
        self.idleNanos = idle.nanoseconds
    }

    func entry(hash: String, venue: String, now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Entry? {
        state.withLock { s in
            guard let index = s.entries.index(forKey: Slot(hash: hash, venue: venue)) else { return nil }
            if Self.idle(since: s.entries.values[index].lastUsed, now: now) > idleNanos {
                s.entries.remove(at: index)
                return nil
            }
            s.entries.values[index].lastUsed = max(now, s.entries.values[index].lastUsed)
            return s.entries.values[index]
        }
    }

    /// Keeps an entry read at the current revision; a newer revision first drops every older entry.
    func store(_ entry: Entry, hash: String, venue: String, now: UInt64 = DispatchTime.now().uptimeNanoseconds) {
        var entry = entry
        entry.lastUsed = now
        state.withLock { s in
            guard s.accept(entry.resolved.revision) else { return }
            if s.entries.count >= Self.capacity { s.entries.removeAll(keepingCapacity: true) }
            s.entries[Slot(hash: hash, venue: venue)] = entry
        }
    }

    /// How long an entry has gone unused: nothing when another call, whose clock read came later, used it
    /// since `now` was read.
    static func idle(since lastUsed: UInt64, now: UInt64) -> UInt64 { now > lastUsed ? now - lastUsed : 0 }

    /// Drops the entries no call used for `idle`: their opened credentials leave memory.
    public func dropIdle(now: UInt64 = DispatchTime.now().uptimeNanoseconds) {
        state.withLock { s in
            s.entries = s.entries.filter { Self.idle(since: $0.value.lastUsed, now: now) <= idleNanos }
        }
    }

    /// Whether the store held no key with this hash at the current revision.
    func isUnknown(hash: String) -> Bool {
        state.withLock { $0.unknown.contains(hash) }
    }

    /// Remembers that the store held no key with this hash at `revision`. Kept apart from the entries,
    /// so a flood of made-up keys never pushes out the keys in use.
    func storeUnknown(hash: String, revision: Int64) {
        state.withLock { s in
            guard s.accept(revision) else { return }
            if s.unknown.count >= Self.capacity { s.unknown.removeAll(keepingCapacity: true) }
            s.unknown.insert(hash)
        }
    }

    /// `userID`'s risk settings: as cached at the current revision, or as `read` gives them (then kept).
    /// The revision is read before the settings, so a change between the two drops them at the next sync.
    func profile(userID: String, read: @Sendable () async throws -> ProfileRecord) async throws -> ProfileRecord {
        if let cached = state.withLock({ $0.revision == nil ? nil : $0.profiles[userID] }) { return cached }
        let revision = try await StoreRevision.read(database)
        let profile = try await read()
        state.withLock { s in
            guard s.accept(revision) else { return }
            if s.profiles.count >= Self.capacity { s.profiles.removeAll(keepingCapacity: true) }
            s.profiles[userID] = profile
        }
        return profile
    }

    /// Reads the store revision and drops what it made stale. If the store cannot be read, everything
    /// is dropped and nothing is cached until it can: the gateway then asks the store on every call.
    public func sync() async {
        let revision = try? await StoreRevision.read(database)
        state.withLock { s in
            // Only forward: a slow sync that read an older revision than entries stored since must not take
            // the cache back to it, where entries read before the newer change would be accepted again.
            if let revision, let current = s.revision, revision <= current { return }
            s.dropAll()
            s.revision = revision
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
    public var unknownCount: Int { state.withLock { $0.unknown.count } }
}
