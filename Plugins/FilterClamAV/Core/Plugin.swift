import Foundation
import PluginAPI

// The anti-virus filter: registers one filter, `clamav`, that sends each message (and each of
// its decoded parts and uuencoded files) to a running clamd with INSTREAM. A listener runs it by
// naming it in its `filters` list. See README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum ClamAVRegistration {
    static let actions = ClamAVSettings.Action.allCases.map(\.rawValue)

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "filter-clamav", version: "1.0.0", summary: "anti-virus: messages, their parts and uuencoded files scanned by clamd",
                kinds: [.filter],
                config: ConfigSchema([
                    ConfigField("clamd", .string, default: .string("unix:/run/clamav/clamd.ctl"),
                                help: "where clamd listens: unix:PATH (its LocalSocket) or inet:HOST:PORT (its TCPSocket)"),
                    ConfigField("connect_timeout", .duration, default: .string("5s")),
                    ConfigField("timeout", .duration, default: .string("2m"),
                                help: "the longest one scan (the message, a part, a file) may take, connecting included"),
                    ConfigField("on_error", .oneOf(ClamAVSettings.ErrorAction.allCases.map(\.rawValue)), default: .string("tempfail"),
                                help: "when clamd cannot give a verdict (down, timed out, over its StreamMaxLength, an error): tempfail or accept"),
                    ConfigField("max_size", .size, default: .string("25M"),
                                help: "bigger messages are not scanned (on_oversize decides); keep it at most clamd's StreamMaxLength"),
                    ConfigField("on_oversize", .oneOf(ClamAVSettings.OversizeAction.allCases.map(\.rawValue)), default: .string("accept"),
                                help: "a message over max_size: accept (unscanned), tempfail or reject"),
                    ConfigField("inbound_action", .oneOf(actions), default: .string("reject"),
                                help: "an infected message on an inbound listener: reject, tempfail, quarantine, cleanse or discard"),
                    ConfigField("outbound_action", .oneOf(actions), default: .string("reject"),
                                help: "an infected message on an outbound (submission) listener"),
                    ConfigField("internal_action", .oneOf(actions), default: .string("reject"),
                                help: "an infected message on an internal listener"),
                    ConfigField("add_headers", .boolean, default: .boolean(true),
                                help: "write X-Virus-Scanned and X-Virus-Status on mail that passes (replacing any it came with)"),
                ])),
            activate: { context in try ClamAVPlugin(context: context) })
    }
}

final class ClamAVPlugin: Plugin {
    let filter: InspectingFilter<ClamAVInspector>

    init(context: PluginContext) throws {
        let settings = try ClamAVSettings(context.config)
        let client = ClamdClient(address: settings.clamd, group: context.eventLoopGroup,
                                 connectTimeout: settings.connectTimeout, timeout: settings.timeout)
        let counters = ClamAVCounters(
            viruses: Dictionary(uniqueKeysWithValues: FilterDirection.allCases.map {
                ($0, context.counter("postern_clamav_viruses_found_total", dimensions: [("direction", $0.rawValue)]))
            }),
            scanned: context.counter("postern_clamav_messages_scanned_total"),
            errors: context.counter("postern_clamav_scan_errors_total"),
            unscanned: context.counter("postern_clamav_messages_unscanned_total"))
        filter = InspectingFilter(ClamAVInspector(settings: settings, client: client, logger: context.logger, counters: counters))
        context.logger.info("clamav filter configured", metadata: ["clamd": "\(settings.clamd)"])
    }

    var services: [ProvidedService] { [.filter(name: "clamav", filter)] }
}

extension ClamAVSettings {
    /// From `[plugin.filter-clamav]`, validated and with its defaults applied by the host.
    init(_ config: ConfigSection) throws {
        let text = config.string("clamd") ?? "unix:/run/clamav/clamd.ctl"
        guard let address = ClamdAddress(text) else { throw ClamAVConfigError.badAddress(text) }
        self.init(clamd: address)
        connectTimeout = config.duration("connect_timeout") ?? connectTimeout
        timeout = config.duration("timeout") ?? timeout
        guard connectTimeout > 0, timeout > 0 else { throw ClamAVConfigError.badTimeout }
        maxSize = config.size("max_size") ?? maxSize
        guard maxSize > 0 else { throw ClamAVConfigError.badMaxSize }
        onError = config.string("on_error").flatMap(ErrorAction.init(rawValue:)) ?? onError
        onOversize = config.string("on_oversize").flatMap(OversizeAction.init(rawValue:)) ?? onOversize
        for direction in FilterDirection.allCases {
            if let action = config.string("\(direction.rawValue)_action").flatMap(Action.init(rawValue:)) { actions[direction] = action }
        }
        addHeaders = config.bool("add_headers") ?? addHeaders
    }
}

enum ClamAVConfigError: Error, CustomStringConvertible {
    case badAddress(String)
    case badTimeout
    case badMaxSize

    var description: String {
        switch self {
        case .badAddress(let text):
            return "filter-clamav: clamd = \"\(text)\" is not unix:/PATH or inet:HOST:PORT (clamd.conf's LocalSocket or TCPAddr and TCPSocket)"
        case .badTimeout: return "filter-clamav: connect_timeout and timeout must be more than 0s"
        case .badMaxSize: return "filter-clamav: max_size must be more than 0 (for example \"25M\")"
        }
    }
}
