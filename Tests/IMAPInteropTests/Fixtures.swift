import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// `postern serve` with the store, the imap plugin (plain, STARTTLS and implicit-TLS listeners),
/// LMTP and the PLAIN and LOGIN mechanisms, on free ports of 127.0.0.1.
final class IMAPServerFixture {
    let dir: TempDir
    let server: ServerProcess
    let plainPort = freePort(), startTLSPort = freePort(), implicitPort = freePort(), lmtpPort = freePort()
    let certificate: (cert: String, key: String)

    /// `store` replaces the embedded store's section (`[plugin.store-postgres]` and its settings).
    init(_ name: String, workers: Int = 2, pluginSettings: String = "", listenerOptions: String = "", store: String? = nil) throws {
        dir = TempDir(name)
        certificate = try Self.makeCertificate(dir, "imap.example")
        let config = """
            data_dir = "./var"
            workers = \(workers)
            [plugins]
            load = ["sasl-plain", "sasl-login"]
            \(store ?? "[plugin.store-sqlite]\npassword_iterations = 4096")
            [plugin.imap]
            \(pluginSettings)
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(plainPort)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            \(listenerOptions)
            [[listener]]
            name = "imap-starttls"
            address = "127.0.0.1"
            port = \(startTLSPort)
            protocol = "imap"
            tls = "starttls"
            certificate = "\(certificate.cert)"
            key = "\(certificate.key)"
            [[listener]]
            name = "imaps"
            address = "127.0.0.1"
            port = \(implicitPort)
            protocol = "imap"
            tls = "implicit"
            certificate = "\(certificate.cert)"
            key = "\(certificate.key)"
            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(lmtpPort)
            protocol = "lmtp"

            """
        // The store is created (and the domain added) before the workers start: two workers
        // opening a brand-new store at the same instant race to create its schema ("table domain
        // already exists"), a store-sqlite issue outside this plugin.
        let file = dir.write("postern.toml", config)
        let (code, output) = Build.run(Build.postern, ["admin", "domain", "add", "example.org", "-c", file], cwd: dir.path)
        guard code == 0 else { throw SystemError.message("postern admin domain add: \(output)") }
        server = try ServerProcess.start(dir, config)
    }

    deinit { server.stop() }

    static func makeCertificate(_ dir: TempDir, _ name: String) throws -> (cert: String, key: String) {
        let cert = dir.path + "/\(name).crt", key = dir.path + "/\(name).key"
        let (code, output) = Build.run(try Build.tool("openssl"), ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                                                                   "-out", cert, "-subj", "/CN=\(name)", "-days", "2"])
        guard code == 0 else { throw SystemError.message("openssl: \(output)") }
        return (cert, key)
    }

    @discardableResult
    func admin(_ args: [String]) throws -> String {
        let (code, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
        guard code == 0 else { throw SystemError.message("postern admin \(args.joined(separator: " ")): \(output)") }
        return output
    }

    /// Accounts in bulk: `postern admin user import` of a CSV (email, password, quota).
    func createAccounts(_ users: [String], password: String, quota: String? = nil) throws {
        var csv = quota == nil ? "email,password\n" : "email,password,quota\n"
        for u in users { csv += "\(u),\(password)\(quota.map { ",\($0)" } ?? "")\n" }
        let file = dir.write("users-\(UUID().uuidString.prefix(6)).csv", csv)
        try admin(["user", "import", file])
    }

    /// Runs `python3 script args`; returns the JSON object its last line prints.
    func python(_ script: String, _ args: [String], timeout: Double = 600) throws -> [String: Any] {
        let path = Build.packageRoot + "/Tests/IMAPInteropTests/Scripts/" + script
        let (code, output) = Build.run(try Build.tool("python3"), [path] + args, cwd: dir.path)
        guard code == 0, let last = output.split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] else {
            throw SystemError.message("\(script) failed (\(code)):\n\(output)\n--- server log (tail) ---\n\(server.log.suffix(4000))")
        }
        return object
    }
}
