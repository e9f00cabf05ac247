import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A throw-away unbound (Debian package `unbound`, see scripts/install-deps.sh) on 127.0.0.1 (and
/// ::1 when this machine has it) at a free high port, as a child process with its own config in a
/// temporary directory, serving the test zones below from `local-data`. No upstream: names
/// outside these zones are never asked.
public final class UnboundServer {
    public let port: Int
    public let hasIPv6: Bool
    private let directory: TempDir
    private let process = Process()
    private let logPath: String

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// The zones every test sees. unbound answers `static` zones itself; a CNAME is answered
    /// alone (not chased), which exercises the resolver's own chain following.
    public static let zones: String = {
        var lines = [
            #"local-zone: "example.test." static"#,
            #"local-data: "example.test. 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60""#,
            // Two equal preferences and a backup.
            #"local-data: "example.test. 300 IN MX 10 mx1.example.test.""#,
            #"local-data: "example.test. 300 IN MX 10 mx2.example.test.""#,
            #"local-data: "example.test. 300 IN MX 20 backup.example.test.""#,
            #"local-data: "mx1.example.test. 300 IN A 192.0.2.1""#,
            #"local-data: "mx1.example.test. 300 IN AAAA 2001:db8::25""#,
            #"local-data: "mx2.example.test. 300 IN A 192.0.2.2""#,
            #"local-data: "backup.example.test. 300 IN A 192.0.2.3""#,
            #"local-data: "multi.example.test. 300 IN AAAA 2001:db8::1""#,
            #"local-data: "multi.example.test. 300 IN AAAA 2001:db8::2""#,
            #"local-data: "multi.example.test. 300 IN A 192.0.2.11""#,
            #"local-data: "multi.example.test. 300 IN A 192.0.2.12""#,
            // Exists, but without MX: RFC 5321 implicit MX applies. And a null MX (RFC 7505).
            #"local-data: "nomx.example.test. 300 IN A 192.0.2.20""#,
            #"local-data: "nullmx.example.test. 300 IN MX 0 .""#,
            // A CNAME chain of three names, a loop, and one into another zone.
            #"local-data: "alias1.example.test. 300 IN CNAME alias2.example.test.""#,
            #"local-data: "alias2.example.test. 120 IN CNAME alias3.example.test.""#,
            #"local-data: "alias3.example.test. 300 IN CNAME mx1.example.test.""#,
            #"local-data: "loop1.example.test. 300 IN CNAME loop2.example.test.""#,
            #"local-data: "loop2.example.test. 300 IN CNAME loop1.example.test.""#,
            #"local-data: "ext.example.test. 300 IN CNAME host.other.test.""#,
            #"local-data: "mxalias.example.test. 300 IN CNAME example.test.""#,
            #"local-data: 'txt.example.test. 300 IN TXT "v=spf1 " "-all"'"#,
            #"local-data: 'txt.example.test. 300 IN TXT "second record"'"#,
            "local-data: 'long.example.test. 300 IN TXT \"\(String(repeating: "a", count: 200))\" \"\(String(repeating: "b", count: 100))\"'",
            #"local-data: "ttl1.example.test. 1 IN A 192.0.2.9""#,
            #"local-data: "shared.example.test. 300 IN MX 5 mx1.example.test.""#,
            #"local-data: "xn--bcher-kva.example.test. 300 IN MX 10 mx1.example.test.""#,
            #"local-zone: "other.test." static"#,
            #"local-data: "host.other.test. 30 IN A 192.0.2.77""#,
            // Reverse zones (unbound's own defaults for them are replaced).
            #"local-zone: "127.in-addr.arpa." static"#,
            #"local-data-ptr: "127.0.0.25 mail.example.test.""#,
            #"local-zone: "8.b.d.0.1.0.0.2.ip6.arpa." static"#,
            #"local-data-ptr: "2001:db8::25 mx1.example.test.""#,
            // A DNSBL: 127.0.0.2 is listed (RFC 5782 §5's test entry), 127.0.0.3 is not.
            #"local-zone: "dnsbl.test." static"#,
            #"local-data: "dnsbl.test. 300 IN SOA ns.dnsbl.test. hostmaster.dnsbl.test. 1 3600 600 86400 30""#,
            #"local-data: "2.0.0.127.dnsbl.test. 300 IN A 127.0.0.2""#,
            #"local-data: '2.0.0.127.dnsbl.test. 300 IN TXT "listed: test entry"'"#,
            // REFUSED for a whole zone, and SERVFAIL through a forward zone whose server refuses TCP.
            #"local-zone: "refused.test." refuse"#,
        ]
        // 100 A records do not fit in a 1232-octet UDP answer: unbound sets TC, TCP gets them all.
        for i in 0..<100 { lines.append("local-data: \"big.example.test. 300 IN A 10.0.\(i / 250).\(i % 250 + 1)\"") }
        return lines.map { "  " + $0 }.joined(separator: "\n")
    }()

    /// `zones`: the `local-zone`/`local-data` lines served (each indented by two spaces); the
    /// DNS tests' own by default, other test targets (SMTPClientTests, by symlink) bring theirs.
    public init(zones: String = UnboundServer.zones) throws {
        guard let binary = ["/usr/sbin/unbound", "/usr/bin/unbound"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Failure(description: "unbound is not installed (expected /usr/sbin/unbound): run scripts/install-deps.sh")
        }
        port = freePort()
        hasIPv6 = Self.canBindIPv6Loopback()
        directory = TempDir("unbound")
        logPath = directory.path + "/unbound.log"
        let deadPort = freePort()
        let config = """
            server:
              do-daemonize: no
              username: ""
              chroot: ""
              directory: "\(directory.path)"
              pidfile: ""
              use-syslog: no
              logfile: ""
              verbosity: 1
              interface: 127.0.0.1
            \(hasIPv6 ? "  interface: ::1" : "")
              port: \(port)
              do-ip4: yes
              do-ip6: \(hasIPv6 ? "yes" : "no")
              do-udp: yes
              do-tcp: yes
              access-control: 127.0.0.0/8 allow
              access-control: ::1 allow
              module-config: "iterator"
              do-not-query-localhost: no
              local-zone: "test." nodefault
            \(zones)
            forward-zone:
              name: "servfail.test."
              forward-addr: 127.0.0.1@\(deadPort)
              forward-tcp-upstream: yes
            remote-control:
              control-enable: no
            """
        let configPath = directory.write("unbound.conf", config)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-c", configPath]
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        // Ready when it accepts TCP on the port; a config error ends the process first.
        let deadline = Date().addingTimeInterval(20)
        while !Self.acceptsTCP(port: port) {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw Failure(description: "unbound did not start on 127.0.0.1:\(port): \(self.log)")
            }
            usleep(20_000)
        }
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log)" }
    public var address: String { "127.0.0.1:\(port)" }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }

    private static func acceptsTCP(port: Int) -> Bool {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    private static func canBindIPv6Loopback() -> Bool {
        let fd = socket(AF_INET6, CInt(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in6()
        addr.sin6_family = sa_family_t(AF_INET6)
        addr.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        } == 0
    }
}
