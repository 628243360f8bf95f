#if os(Linux)
    import CProcessControl
    import Glibc
#endif

/// Keeps key material out of crash dumps and debuggers: no core file is written, and no other process of
/// the same user can attach with ptrace or read the process's memory through /proc. Every command that
/// opens the vault applies it first.
public enum ProcessHardening {
    public static func apply() {
        #if os(Linux)
            var none = rlimit(rlim_cur: 0, rlim_max: 0)
            _ = setrlimit(Int32(RLIMIT_CORE.rawValue), &none)
            _ = warden_set_undumpable()
        #endif
    }

    /// Whether the process is marked undumpable.
    public static var isUndumpable: Bool {
        #if os(Linux)
            return warden_is_dumpable() == 0
        #else
            return false
        #endif
    }
}
