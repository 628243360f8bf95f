import Foundation
import Logging

enum LogSetup {
    /// Log lines go to stderr as `time level label : key=value… message`; the level comes from WARDEN_LOG_LEVEL.
    static func bootstrap(environment: [String: String]) -> Logger {
        let level = environment["WARDEN_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "warden")
        logger.logLevel = level
        return logger
    }

    /// One-shot commands log only warnings and errors unless WARDEN_LOG_LEVEL says otherwise.
    static func cli() -> Logger {
        var environment = ProcessInfo.processInfo.environment
        if environment["WARDEN_LOG_LEVEL"] == nil { environment["WARDEN_LOG_LEVEL"] = "warning" }
        return bootstrap(environment: environment)
    }
}
