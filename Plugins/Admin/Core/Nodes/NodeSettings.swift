import Foundation
import PluginAPI

/// `[plugin.admin]`'s part about several nodes: this node's name in the console, the nodes it
/// shows (`[[plugin.admin.node]]`), the console certificate it calls them with, and how often it
/// checks on them. A node answers on a listener with `node_api = true` (Plugins/Admin/README.md).
struct NodeSettings: Sendable {
    struct Node: Sendable, Equatable {
        var name: String
        var url: String
        var host: String
        var port: Int
    }

    static let nodeSchema = ConfigSchema([
        ConfigField("name", .string, required: true, help: "the node's name in the console (its certificate's name)"),
        ConfigField("url", .string, required: true, help: "https://HOST:PORT of the node's node_api listener; HOST must be in its certificate"),
    ])

    static let fields: [ConfigField] = [
        ConfigField("node_name", .string, default: .string(""), help: "this node's name in the console; default: the host name"),
        ConfigField("node", .array(.table(nodeSchema)), default: .array([]),
                    help: "[[plugin.admin.node]]: the other nodes this console shows, each with name and url"),
        ConfigField("node_certificate", .string, default: .string("admin/ca/issued/console.pem"),
                    help: "the console certificate (postern admin ca issue NAME --console) the nodes are called with; relative to data_dir"),
        ConfigField("node_key", .string, default: .string("admin/ca/issued/console.key")),
        ConfigField("node_ca", .string, default: .string("admin/ca/ca.pem"), help: "the CA the nodes' certificates must chain to"),
        ConfigField("heartbeat_interval", .duration, default: .string("10s"), help: "how often each node's status is fetched; a node that does not answer is shown down"),
        ConfigField("node_timeout", .duration, default: .string("3s"), help: "the longest wait for a node's answer"),
    ]

    var localName: String
    var nodes: [Node]
    var certificate: String
    var key: String
    var ca: String
    var heartbeatInterval: Double
    var timeout: Double

    init(_ config: ConfigSection, dataDirectory: String) throws {
        func path(_ key: String) -> String {
            let value = config.string(key)!
            return value.hasPrefix("/") ? value : dataDirectory + "/" + value
        }
        let name = config.string("node_name") ?? ""
        localName = name.isEmpty ? ProcessInfo.processInfo.hostName : name
        certificate = path("node_certificate")
        key = path("node_key")
        ca = path("node_ca")
        heartbeatInterval = max(0.2, config.duration("heartbeat_interval") ?? 10)
        timeout = max(0.1, config.duration("node_timeout") ?? 3)
        var nodes: [Node] = []
        if case .array(let items)? = config["node"] {
            for (n, item) in items.enumerated() {
                guard case .table(let table) = item, case .string(let name)? = table["name"], case .string(let url)? = table["url"] else {
                    throw NodeSettingsError("plugin.admin.node #\(n + 1) needs name and url")
                }
                guard let c = URLComponents(string: url), c.scheme?.lowercased() == "https", let host = c.host, !host.isEmpty,
                      c.path.isEmpty || c.path == "/" else {
                    throw NodeSettingsError("plugin.admin.node '\(name)': url must be https://HOST:PORT (the node's node_api listener), not \"\(url)\"")
                }
                guard name != localName, !nodes.contains(where: { $0.name == name }) else {
                    throw NodeSettingsError("plugin.admin.node '\(name)': two nodes of one name (this node is '\(localName)')")
                }
                nodes.append(Node(name: name, url: url, host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: c.port ?? 443))
            }
        }
        self.nodes = nodes
    }
}

struct NodeSettingsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
