#if os(Linux)
    import CProcessControl
    import Glibc
#endif

/// Keeps key material out of crash dumps, crash reports and debuggers: no core file is written, no other
/// process of the same user can attach with ptrace or read the process's memory through /proc, and a crash
/// ends the process at once instead of going to the Swift runtime's crash reporter (which prints the memory
/// around each register to the log, and keeps a process it cannot report on frozen). Every command that
/// opens the vault applies it first.
public enum ProcessHardening {
    public static func apply() {
        #if os(Linux)
            var none = rlimit(rlim_cur: 0, rlim_max: 0)
            _ = setrlimit(Int32(RLIMIT_CORE.rawValue), &none)
            _ = warden_set_undumpable()
            for crash in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] { _ = signal(crash, SIG_DFL) }
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
