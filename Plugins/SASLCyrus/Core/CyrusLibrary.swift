import CSASL2
import Foundation
import PluginAPI

// libsasl2's process-wide side: one `sasl_server_init` per process, its options answered by a
// `sasl_getopt` callback from the plugin's config (no /etc/sasl2 file needed), its log lines
// through the plugin's logger, and one thread on which every libsasl2 call of the process runs.
//
// Why one thread: libsasl2 checks passwords itself (reading sasldb2, asking saslauthd over a
// socket), so a call may block for as long as saslauthd takes. Running it on a NIO event loop
// would stall every connection of that loop, and on Swift's cooperative pool (two threads on a
// two-core machine) every task. A serial queue also keeps libsasl2's global state (plug-in list,
// sasldb handle) to one thread at a time, whatever mutex hooks the library was built with.

/// The options libsasl2 reads through `sasl_getopt`, fixed at the first activation.
struct CyrusOptions: Equatable, Sendable {
    var appName: String
    /// Option name -> value (`pwcheck_method`, `auxprop_plugin`, `sasldb_path`, `mech_list`, ...).
    var values: [String: String]
}

/// The result of one libsasl2 call, copied out of the library's buffers.
struct CyrusResult: Sendable {
    var code: Int32
    var output: [UInt8]
    /// SASL_USERNAME after SASL_OK: the authorization identity libsasl2 canonicalised.
    var username: String?
    /// `sasl_errdetail`, for the log only (it may name the user, never the password).
    var detail: String
}

enum CyrusLibraryError: Error, CustomStringConvertible, Equatable {
    case initFailed(Int32, String)
    case differentOptions
    case unknownMechanisms([String], available: [String])

    var description: String {
        switch self {
        case .initFailed(let code, let text): return "sasl_server_init failed (\(code)): \(text)"
        case .differentOptions:
            return "libsasl2 is initialised once per process and was already initialised with other options"
        case .unknownMechanisms(let names, let available):
            return "libsasl2 offers no mechanism \(names.joined(separator: ", ")) (installed: \(available.joined(separator: ", "))); "
                + "install its Cyrus plug-in (Debian libsasl2-modules) or remove it from 'mechanisms'"
        }
    }
}

// @unchecked Sendable: `options`, `optionValues` and `logger` are written once under `lock`, in
// `initialise`, before libsasl2 can call back; afterwards they are only read.
final class CyrusLibrary: @unchecked Sendable {
    static let shared = CyrusLibrary()

    /// Every libsasl2 call of the process runs here (see the file comment).
    let queue = DispatchQueue(label: "postern.sasl-cyrus.libsasl2")
    private let lock = NSLock()
    private(set) var options: CyrusOptions?
    /// The option values as C strings, never freed: libsasl2 may keep the pointers it was given.
    fileprivate var optionValues: [String: UnsafeMutablePointer<CChar>] = [:]
    private(set) var logger = Logger(label: "plugin.sasl-cyrus")
    /// Every mechanism the loaded Cyrus plug-ins provide (before `mech_list` narrows them).
    private(set) var available: [String] = []

    /// Initialises libsasl2 once for the process. A second activation with the same options
    /// (a reload in a test process) is a no-op; with other options it is refused, because
    /// libsasl2 cannot be initialised twice.
    func initialise(_ wanted: CyrusOptions, logger: Logger) throws {
        lock.lock()
        defer { lock.unlock() }
        if let options {
            guard options == wanted else { throw CyrusLibraryError.differentOptions }
            return
        }
        self.logger = logger
        for (key, value) in wanted.values { optionValues[key] = strdup(value) }
        let callbacks = UnsafeMutablePointer<sasl_callback_t>.allocate(capacity: 3)
        callbacks[0] = sasl_callback_t(id: UInt(SASL_CB_GETOPT), proc: unsafeBitCast(getOption as GetOptionCallback, to: AnyCallback.self), context: nil)
        callbacks[1] = sasl_callback_t(id: UInt(SASL_CB_LOG), proc: unsafeBitCast(logLine as LogCallback, to: AnyCallback.self), context: nil)
        callbacks[2] = sasl_callback_t(id: UInt(SASL_CB_LIST_END), proc: nil, context: nil)
        let appName = strdup(wanted.appName)
        let code = queue.sync { sasl_server_init(callbacks, appName) }
        guard code == SASL_OK else {
            throw CyrusLibraryError.initFailed(code, String(cString: sasl_errstring(code, nil, nil)))
        }
        options = wanted
        available = queue.sync {
            var names: [String] = []
            if var list = sasl_global_listmech() {
                while let name = list.pointee {
                    names.append(String(cString: name))
                    list += 1
                }
            }
            return names
        }
    }

    /// Runs `body` on the libsasl2 thread; nil when it has not finished within `timeout` seconds
    /// (it goes on running; its result is dropped and the exchange has already failed).
    func run(timeout: Double, _ body: @escaping @Sendable () -> CyrusResult) async -> CyrusResult? {
        let once = ResumeOnce()
        return await withCheckedContinuation { (continuation: CheckedContinuation<CyrusResult?, Never>) in
            queue.async {
                let result = body()
                if once.claim() { continuation.resume(returning: result) }
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                if once.claim() { continuation.resume(returning: nil) }
            }
        }
    }
}

/// Lets exactly one of two racing callers resume a continuation.
private final class ResumeOnce: @unchecked Sendable {   // @unchecked Sendable: `done` only changes under `lock`
    private let lock = NSLock()
    private var done = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if done { return false }
        done = true
        return true
    }
}

/// `sasl_getopt_t`: answers from the config; SASL_FAIL (libsasl2's default applies) otherwise.
private func getOption(_ context: UnsafeMutableRawPointer?, _ plugin: UnsafePointer<CChar>?, _ option: UnsafePointer<CChar>?,
                       _ result: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ length: UnsafeMutablePointer<UInt32>?) -> Int32 {
    guard let option, let result, let value = CyrusLibrary.shared.optionValues[String(cString: option)] else { return SASL_FAIL }
    result.pointee = UnsafePointer(value)
    length?.pointee = UInt32(strlen(value))
    return SASL_OK
}

/// `sasl_log_t`: libsasl2's own messages (a missing sasldb, saslauthd down) into the plugin's log.
private func logLine(_ context: UnsafeMutableRawPointer?, _ level: Int32, _ message: UnsafePointer<CChar>?) -> Int32 {
    guard let message else { return SASL_OK }
    let text = String(cString: message)
    let logger = CyrusLibrary.shared.logger
    switch level {
    case SASL_LOG_ERR, SASL_LOG_FAIL: logger.warning("libsasl2: \(text)")
    case SASL_LOG_WARN, SASL_LOG_NOTE: logger.info("libsasl2: \(text)")
    default: logger.debug("libsasl2: \(text)")
    }
    return SASL_OK
}

/// The two callbacks as the untyped `int (*)(void)` that `sasl_callback_t` holds.
private typealias AnyCallback = @convention(c) () -> Int32
private typealias GetOptionCallback = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                                                      UnsafeMutablePointer<UnsafePointer<CChar>?>?, UnsafeMutablePointer<UInt32>?) -> Int32
private typealias LogCallback = @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Int32
