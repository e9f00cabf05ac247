import ArgumentParser
import Foundation
import PluginAPI
import PluginCredentials
import PosternHost

extension Admin {
    /// `postern admin dkim ...`: DKIM signing keys for the sender-auth plugin.
    struct DKIMCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dkim", abstract: "DKIM signing keys.",
                                                        subcommands: [Keygen.self])

        struct Keygen: AdminAction {
            static let configuration = CommandConfiguration(
                abstract: "Make a DKIM private key and print the DNS TXT record that publishes it.",
                discussion: """
                    The key is written as DIR/DOMAIN.SELECTOR.key (PEM, mode 0600; an existing file is never \
                    replaced), DIR being --out or the data directory's dkim/. Publish the printed record at \
                    SELECTOR._domainkey.DOMAIN before signing with the key.
                    """)
            @OptionGroup var options: ConfigOption
            @Argument(help: "The signing domain (d=).") var domain: String
            @Argument(help: "The selector (s=).") var selector: String
            @Option(help: "rsa or ed25519.") var algorithm = "rsa"
            @Option(help: "RSA key size in bits (2048 or more).") var bits = 2048
            @Option(help: "The directory to write the key into (default: the data directory's dkim/).", transform: absolutePath)
            var out: String?
            @Flag(help: "Print JSON: {\"domain\", \"selector\", \"algorithm\", \"key_file\", \"record\", \"strings\", \"zone_line\"}.")
            var json = false

            var outputs: [String] { out.map { [$0] } ?? [] }

            func operation() throws -> AdminOperation {
                guard let chosen = DKIMKeyGeneration.Algorithm(rawValue: algorithm.lowercased()) else {
                    throw ValidationError("unknown algorithm '\(algorithm)': use rsa or ed25519")
                }
                if chosen == .rsa, bits < 2048 { throw ValidationError("--bits must be 2048 or more") }
                if chosen == .rsa, bits > 8192 { throw ValidationError("--bits must be 8192 or less") }
                let domain = self.domain.lowercased(), selector = self.selector
                return { [out, bits, json] ctx in
                    let directory = out ?? (ctx.config.dataDirectory as NSString).appendingPathComponent("dkim")
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                            attributes: [.posixPermissions: 0o700])
                    let file = (directory as NSString).appendingPathComponent("\(domain).\(selector).key")
                    let result = try DKIMKeyGeneration.generate(domain: domain, selector: selector, algorithm: chosen,
                                                                bits: bits, path: file)
                    if json {
                        struct Output: Encodable {
                            var domain, selector, algorithm, key_file, record, zone_line: String
                            var strings: [String]
                        }
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                        print(String(decoding: try encoder.encode(Output(
                            domain: domain, selector: selector, algorithm: chosen.rawValue, key_file: result.keyPath,
                            record: result.record, zone_line: result.zoneLine, strings: result.strings)), as: UTF8.self))
                    } else {
                        print("wrote \(result.keyPath)")
                        print("publish this record in DNS:")
                        print(result.zoneLine)
                    }
                }
            }
        }
    }
}
