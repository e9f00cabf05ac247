import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// A throw-away MIT Kerberos realm: its own krb5.conf and kdc.conf in a temporary directory
/// (reached through KRB5_CONFIG and KRB5_KDC_PROFILE), a database made with `kdb5_util create`,
/// principals added with `kadmin.local`, a service keytab from `ktadd`, and `krb5kdc -n` on a free
/// port of 127.0.0.1. The KDC, kdb5_util and kadmin.local are required: without them the tests
/// fail (they never skip).
final class KerberosRealm {
    static let realm = "POSTERN.TEST"
    let dir = TempDir("krb5-realm")
    let port = freePort()
    let kdc = Process()
    var krb5Config: String { dir.path + "/krb5.conf" }
    var kdcProfile: String { dir.path + "/kdc.conf" }
    /// imap/localhost, smtp/localhost and pop/localhost.
    var keytab: String { dir.path + "/service.keytab" }
    var environment: [String: String] { ["KRB5_CONFIG": krb5Config, "KRB5_KDC_PROFILE": kdcProfile] }
    var kdcLog: String { (try? String(contentsOfFile: dir.path + "/kdc.log", encoding: .utf8)) ?? "" }

    init(users: [(String, String)]) throws {
        chmod(dir.path, 0o755)
        let root = dir.path
        dir.write("krb5.conf", """
            [libdefaults]
              default_realm = \(Self.realm)
              dns_lookup_kdc = false
              dns_lookup_realm = false
              dns_canonicalize_hostname = false
              rdns = false
              udp_preference_limit = 1
            [realms]
              \(Self.realm) = {
                kdc = 127.0.0.1:\(port)
              }
            [domain_realm]
              localhost = \(Self.realm)
            """)
        dir.write("kdc.conf", """
            [kdcdefaults]
              kdc_ports = \(port)
              kdc_tcp_ports = \(port)
            [realms]
              \(Self.realm) = {
                database_name = \(root)/principal
                key_stash_file = \(root)/stash
                acl_file = \(root)/kadm5.acl
                kdc_ports = \(port)
                kdc_tcp_ports = \(port)
                max_life = 1h
              }
            [logging]
              kdc = FILE:\(root)/kdc.log
            """)
        dir.write("kadm5.acl", "")
        try run("/usr/sbin/kdb5_util", ["create", "-s", "-r", Self.realm, "-P", "master-\(UUID().uuidString)"])
        for (user, password) in users {
            try kadmin("addprinc -pw \(password) \(user)")
        }
        for service in ["imap", "smtp", "pop"] {
            try kadmin("addprinc -randkey \(service)/localhost")
        }
        try kadmin("ktadd -k \(keytab) imap/localhost smtp/localhost pop/localhost")
        kdc.executableURL = URL(fileURLWithPath: "/usr/sbin/krb5kdc")
        kdc.arguments = ["-n", "-r", Self.realm, "-P", root + "/kdc.pid"]
        kdc.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b }
        kdc.standardOutput = FileHandle.nullDevice
        kdc.standardError = FileHandle(forWritingAtPath: dir.write("kdc.stderr", ""))
        try kdc.run()
        // Ready when it accepts on its TCP port.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if case .success(let fd) = connectLoopback(port: port, timeout: 1) { close(fd); return }
            guard kdc.isRunning else { break }
            usleep(50_000)
        }
        throw SystemError.message("krb5kdc did not start on port \(port):\n\(kdcLog)")
    }

    deinit {
        stopChild(kdc)
    }

    func kadmin(_ query: String) throws {
        try run("/usr/sbin/kadmin.local", ["-r", Self.realm, "-q", query])
    }

    private func run(_ tool: String, _ args: [String]) throws {
        let (status, output) = Build.run(tool, args, cwd: dir.path, environment: environment)
        guard status == 0 else { throw SystemError.message("\(tool) \(args.joined(separator: " ")) failed (\(status)): \(output)") }
    }

    /// `kinit principal` with the password on standard input, into a fresh credential cache.
    func kinit(_ principal: String, password: String) throws -> String {
        let cache = dir.path + "/cc-\(UUID().uuidString.prefix(8))"
        let result = runWithInput("/usr/bin/kinit", [principal], input: password + "\n",
                                  environment: environment.merging(["KRB5CCNAME": "FILE:" + cache]) { _, b in b })
        guard result.status == 0 else { throw SystemError.message("kinit \(principal) failed (\(result.status)): \(result.output)\n\(kdcLog.suffix(2000))") }
        return "FILE:" + cache
    }
}

/// Runs a program with `input` on its standard input and a time limit (killed after it), and
/// returns its status and combined output.
func runWithInput(_ executable: String, _ arguments: [String], input: String, environment: [String: String], timeout: Double = 30)
    -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b }
    let out = Pipe(), stdin = Pipe()
    process.standardOutput = out
    process.standardError = out
    process.standardInput = stdin
    do { try process.run() } catch { return (-1, "cannot run \(executable): \(error)") }
    stdin.fileHandleForWriting.write(Data(input.utf8))
    try? stdin.fileHandleForWriting.close()
    let timer = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    timer.cancel()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
