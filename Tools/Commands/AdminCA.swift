import ArgumentParser
import Foundation
import PluginAPI
import PluginCredentials
import PosternHost

extension Admin {
    /// `postern admin ca ...`: the certificate authority a console and its nodes trust each other
    /// by (the admin plugin's node API, Plugins/Admin/README.md "Several nodes").
    struct CACommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca", abstract: "The certificate authority of the console and its nodes.",
            discussion: """
                The CA lives in the data directory's admin/ca/ (ca.pem, and ca.key, mode 0600); issued \
                certificates go to admin/ca/issued/ unless --out says otherwise. Copy a node's NAME.pem, \
                NAME.key and ca.pem to that node; keep ca.key where only the site administrator reads it.
                """,
            subcommands: [Init.self, Issue.self, List.self])

        static func directory(_ ctx: AdminContext) -> String {
            (ctx.config.dataDirectory as NSString).appendingPathComponent("admin/ca")
        }

        /// Writes a new file (never replacing one) with `mode`.
        static func create(_ path: String, _ text: String, mode: Int) throws {
            guard !FileManager.default.fileExists(atPath: path) else {
                throw SystemError.message("\(path) exists already: remove it first to replace it")
            }
            guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
                throw SystemError.message("cannot write \(path)")
            }
        }

        static func printJSON(_ value: some Encodable) throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(value), as: UTF8.self))
        }

        struct Init: AdminAction {
            static let configuration = CommandConfiguration(abstract: "Make the CA (admin/ca/ca.pem and ca.key in the data directory).")
            @OptionGroup var options: ConfigOption
            @Option(help: "The site's name, in the CA's subject.") var site = ProcessInfo.processInfo.hostName
            @Option(help: "Days the CA is valid.") var days = 3650
            @Flag(help: "Print JSON: {\"certificate\", \"key\"} (the files' paths).") var json = false

            func operation() throws -> AdminOperation {
                guard (1...36500).contains(days) else { throw ValidationError("--days must be from 1 to 36500") }
                return { [site, days, json] ctx in
                    let directory = CACommand.directory(ctx)
                    try FileManager.default.createDirectory(atPath: directory + "/issued", withIntermediateDirectories: true,
                                                            attributes: [.posixPermissions: 0o700])
                    let authority = try NodeCertificates.makeAuthority(siteName: site, days: days)
                    try CACommand.create(directory + "/ca.key", authority.key, mode: 0o600)
                    try CACommand.create(directory + "/ca.pem", authority.certificate, mode: 0o644)
                    if json {
                        try CACommand.printJSON(["certificate": directory + "/ca.pem", "key": directory + "/ca.key"])
                    } else {
                        print("wrote \(directory)/ca.pem and ca.key")
                        print("next: postern admin ca issue console --console, and postern admin ca issue NODE --host ADDRESS for each node")
                    }
                }
            }
        }

        struct Issue: AdminAction {
            static let configuration = CommandConfiguration(
                abstract: "Issue a certificate for a node (its node-api listener) or, with --console, for a console.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The node's or console's name (the certificate's CN).") var name: String
            @Flag(help: "A console certificate: it may call every node's API as any administrator.") var console = false
            @Option(name: .customLong("host"), help: "A name or IP address the node is reached at (repeat; the console's URL for the node must use one).")
            var hosts: [String] = []
            @Option(help: "Days the certificate is valid.") var days = 825
            @Option(help: "The directory to write NAME.pem and NAME.key into (default: admin/ca/issued).", transform: absolutePath)
            var out: String?
            @Flag(help: "Print JSON: {\"name\", \"role\", \"certificate\", \"key\", \"ca\", \"hosts\"}.") var json = false

            var outputs: [String] { out.map { [$0] } ?? [] }

            func operation() throws -> AdminOperation {
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-._".contains($0) }) else {
                    throw ValidationError("the name is letters, digits, '-', '.' and '_'")
                }
                if !console && hosts.isEmpty { throw ValidationError("a node certificate needs --host (the name or address the console reaches it at)") }
                guard (1...3650).contains(days) else { throw ValidationError("--days must be from 1 to 3650") }
                return { [name, console, hosts, days, out, json] ctx in
                    let directory = CACommand.directory(ctx)
                    guard let certificate = FileManager.default.contents(atPath: directory + "/ca.pem"),
                          let key = FileManager.default.contents(atPath: directory + "/ca.key") else {
                        throw SystemError.message("no CA in \(directory): run postern admin ca init first")
                    }
                    let authority = NodeCertificates.Issued(certificate: String(decoding: certificate, as: UTF8.self),
                                                            key: String(decoding: key, as: UTF8.self))
                    let role: NodeCertificates.Role = console ? .console : .node
                    let issued = try NodeCertificates.issue(name: name, role: role, hosts: hosts, authority: authority, days: days)
                    let target = out ?? directory + "/issued"
                    try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
                    try CACommand.create(target + "/\(name).key", issued.key, mode: 0o600)
                    try CACommand.create(target + "/\(name).pem", issued.certificate, mode: 0o644)
                    if json {
                        struct Output: Encodable { var name, role, certificate, key, ca: String; var hosts: [String] }
                        try CACommand.printJSON(Output(name: name, role: console ? "console" : "node", certificate: target + "/\(name).pem",
                                                       key: target + "/\(name).key", ca: directory + "/ca.pem", hosts: hosts))
                    } else {
                        print("wrote \(target)/\(name).pem and \(name).key (\(console ? "console" : "node"), valid \(days) days)")
                    }
                }
            }
        }

        struct List: AdminAction {
            static let configuration = CommandConfiguration(abstract: "List the certificates in admin/ca/issued.")
            @OptionGroup var options: ConfigOption
            @Flag(help: "Print JSON: [{\"name\", \"role\", \"notAfter\", \"hosts\", \"file\"}].") var json = false

            func operation() throws -> AdminOperation {
                { [json] ctx in
                    let directory = CACommand.directory(ctx) + "/issued"
                    struct Row: Encodable { var name, role, file: String; var notAfter: Int64; var hosts: [String] }
                    var rows: [Row] = []
                    for file in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() where file.hasSuffix(".pem") {
                        guard let data = FileManager.default.contents(atPath: directory + "/" + file),
                              let d = try? NodeCertificates.describe(pem: String(decoding: data, as: UTF8.self)) else { continue }
                        rows.append(Row(name: d.name, role: d.role == .console ? "console" : d.role == .node ? "node" : "?",
                                        file: directory + "/" + file, notAfter: Int64(d.notAfter.timeIntervalSince1970), hosts: d.hosts))
                    }
                    if json { return try CACommand.printJSON(rows) }
                    for r in rows {
                        print("\(r.name)\t\(r.role)\tuntil \(Date(timeIntervalSince1970: Double(r.notAfter)))\t\(r.hosts.joined(separator: ","))")
                    }
                }
            }
        }
    }
}
