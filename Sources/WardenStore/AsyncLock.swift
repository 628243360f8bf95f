/// A FIFO mutual-exclusion lock for async code: waiters suspend rather than block a thread, and give up
/// after a bounded wait.
actor AsyncLock {
    private var locked = false
    private var waiters: [(id: UInt64, waiter: CheckedContinuation<Void, any Error>)] = []
    private var nextID: UInt64 = 0

    /// Runs `body` holding the lock; throws `StoreError.timedOut` if the lock was not free within `limit`.
    func withLock<T: Sendable>(waitingAtMost limit: Duration, _ body: @Sendable () async throws -> T) async throws -> T {
        try await acquire(limit)
        defer { release() }
        return try await body()
    }

    private func acquire(_ limit: Duration) async throws {
        guard locked else { locked = true; return }
        nextID += 1
        let id = nextID
        let timer = Task { [weak self] in
            try await Task.sleep(for: limit)
            await self?.expire(id, limit)
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { waiters.append((id, $0)) }
    }

    private func expire(_ id: UInt64, _ limit: Duration) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).waiter.resume(throwing: StoreError.timedOut(limit))
    }

    private func release() {
        if waiters.isEmpty { locked = false } else { waiters.removeFirst().waiter.resume() }
    }
}
