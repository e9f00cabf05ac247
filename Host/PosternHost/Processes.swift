import Foundation
import PluginAPI

/// Starting child processes of the same binary, with chosen descriptors at fixed numbers.
public enum Spawner {
    public struct Child {
        public var pid: pid_t
    }

    /// Starts `postern ARGS`, with `descriptors[i]` at fd 3+i in the child and stdin on /dev/null.
    /// Every other descriptor of ours is close-on-exec. The child gets default signal dispositions
    /// and an empty signal mask, whatever the master ignores or blocks.
    public static func spawn(arguments: [String], descriptors: [CInt] = [], stdout: CInt? = nil) throws -> Child {
        let exe = PluginLoader.executablePath()
        // Move the sources out of the 3..3+n range first so dup2 targets never clobber a source.
        var highCopies: [CInt] = []
        defer { highCopies.forEach { close($0) } }
        for fd in descriptors {
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 200)
            guard copy >= 0 else { throw SystemError.call("fcntl(F_DUPFD_CLOEXEC)", errno) }
            highCopies.append(copy)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let stdout { posix_spawn_file_actions_adddup2(&actions, stdout, 1) }
        for (i, fd) in highCopies.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, CInt(3 + i)) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGHUP, SIGTERM, SIGINT, SIGCHLD, SIGUSR1, SIGUSR2, SIGQUIT] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([exe] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw SystemError.call("posix_spawn \(exe)", rc) }
        return Child(pid: pid)
    }

    /// Runs `postern ARGS` to completion and returns its exit status and standard output.
    public static func run(arguments: [String]) throws -> (status: CInt, output: Data) {
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError.call("pipe", errno) }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let child: Child
        do {
            child = try spawn(arguments: arguments, stdout: fds[1])
        } catch {
            close(fds[0]); close(fds[1])
            throw error
        }
        close(fds[1])
        let reader = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        let output = reader.readDataToEndOfFile()
        var status: CInt = 0
        while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
        return (status, output)
    }

    /// "exited with status 1", "killed by signal 11".
    public static func describe(status: CInt) -> String {
        if status & 0x7f == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "killed by signal \(status & 0x7f)"
    }

    public static func exitedCleanly(_ status: CInt) -> Bool { status & 0x7f == 0 && (status >> 8) & 0xff == 0 }
}

public enum SystemError: Error, CustomStringConvertible {
    case call(String, CInt)
    case message(String)

    public var description: String {
        switch self {
        case .call(let what, let err): return "\(what): \(String(cString: strerror(err)))"
        case .message(let m): return m
        }
    }
}

/// Descriptors a child may have inherited by accident.
public enum InheritedDescriptors {
    /// Closes every descriptor from `lowest` up. A child of the master calls this first: a socket
    /// the master's event loop accepted without close-on-exec (a control connection, say) would
    /// otherwise stay open in the child, and its peer would never see EOF.
    public static func closeAll(from lowest: CInt) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for fd in entries.compactMap({ CInt($0) }) where fd >= lowest { close(fd) }
    }
}

/// Giving up root in a child before it maps any plugin.
public enum Privileges {
    /// Switches to `user` (and `group`, else the user's primary group) when running as root.
    /// A no-op for an unprivileged process.
    public static func drop(user: String?, group: String?) throws {
        guard geteuid() == 0, let user else { return }
        guard let pw = getpwnam(user) else { throw SystemError.message("no such user '\(user)'") }
        var gid = pw.pointee.pw_gid
        let uid = pw.pointee.pw_uid
        if let group {
            guard let gr = getgrnam(group) else { throw SystemError.message("no such group '\(group)'") }
            gid = gr.pointee.gr_gid
        }
        guard setgroups(0, nil) == 0 else { throw SystemError.call("setgroups", errno) }
        guard setgid(gid) == 0 else { throw SystemError.call("setgid", errno) }
        guard setuid(uid) == 0 else { throw SystemError.call("setuid", errno) }
        guard setuid(0) != 0 else { throw SystemError.message("could still regain root after dropping privileges") }
    }

    /// Creates the data directory and hands it to the worker user. When the directory belongs to
    /// someone else (data written by an earlier run as root, or by a tool), everything in it is
    /// handed over once, except `keep` (the master's run directory, which stays root's: a worker
    /// must not reach the control socket).
    public static func prepareDataDirectory(_ path: String, user: String?, group: String?, keep: [String] = [], logger: Logger? = nil) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard geteuid() == 0, let user, let pw = getpwnam(user) else { return }
        let uid = pw.pointee.pw_uid
        var gid = pw.pointee.pw_gid
        if let group, let gr = getgrnam(group) { gid = gr.pointee.gr_gid }
        var st = stat()
        guard stat(path, &st) == 0, st.st_uid != uid else { return }
        let skipped = Set(keep.map { ($0 as NSString).standardizingPath })
        var count = 1
        _ = Glibc.chown(path, uid, gid)
        if let walker = FileManager.default.enumerator(atPath: path) {
            for case let relative as String in walker {
                let full = ((path as NSString).appendingPathComponent(relative) as NSString).standardizingPath
                if skipped.contains(full) { walker.skipDescendants(); continue }
                _ = Glibc.lchown(full, uid, gid)
                count += 1
            }
        }
        logger?.notice("handed the data directory to \(user)", metadata: ["directory": "\(path)", "entries": "\(count)"])
    }

    /// Why `user` cannot reach `path` (a parent directory without search permission for it), or
    /// nil. Mode bits only (no ACLs): the common case is a tree under /root or a 0700 home.
    public static func unreachable(_ path: String, user: String?, group: String?) -> String? {
        guard geteuid() == 0, let user, let pw = getpwnam(user) else { return nil }
        let uid = pw.pointee.pw_uid
        var gid = pw.pointee.pw_gid
        if let group, let gr = getgrnam(group) { gid = gr.pointee.gr_gid }
        var dir = (path as NSString).deletingLastPathComponent
        while !dir.isEmpty && dir != "/" {
            var st = stat()
            if stat(dir, &st) == 0 {
                let mode = st.st_mode
                let ok = st.st_uid == uid ? mode & S_IXUSR != 0 : st.st_gid == gid ? mode & S_IXGRP != 0 : mode & S_IXOTH != 0
                if !ok {
                    return "the workers run as \(user) and cannot reach \(path): \(dir) is mode \(String(mode & 0o777, radix: 8)) owned by uid \(st.st_uid); run postern from a directory \(user) can enter, move data_dir, or set user = (and group =) to someone who can"
                }
            }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return nil
    }

    /// Hands a directory to the worker user, so that unprivileged workers can write their data.
    public static func chown(_ path: String, user: String?, group: String?) {
        guard geteuid() == 0, let user, let pw = getpwnam(user) else { return }
        var gid = pw.pointee.pw_gid
        if let group, let gr = getgrnam(group) { gid = gr.pointee.gr_gid }
        _ = Glibc.chown(path, pw.pointee.pw_uid, gid)
    }
}

/// Listening sockets owned by the master and inherited by workers.
public enum ListeningSocket {
    /// Binds and listens on address:port; close-on-exec (the spawner passes it on explicitly).
    public static func bind(address: String, port: Int, backlog: Int) throws -> CInt {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: CInt
        if inet_pton(AF_INET, address, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
        } else if inet_pton(AF_INET6, address, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
        } else {
            throw SystemError.message("\(address) is not an IP address")
        }
        let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.call("socket", errno) }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        if family == AF_INET6 { setsockopt(fd, CInt(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<CInt>.size)) }
        let rc: CInt = family == AF_INET
            ? withUnsafePointer(to: &v4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            : withUnsafePointer(to: &v6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        guard rc == 0 else {
            let err = errno
            close(fd)
            throw SystemError.call("bind \(address):\(port)", err)
        }
        guard listen(fd, CInt(backlog)) == 0 else {
            let err = errno
            close(fd)
            throw SystemError.call("listen \(address):\(port)", err)
        }
        return fd
    }

    /// Binds and listens on a Unix socket, replacing a stale socket file (one nobody listens on).
    public static func bindUnix(path: String, mode: mode_t, backlog: Int) throws -> CInt {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw SystemError.message("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.call("socket", errno) }
        let size = socklen_t(MemoryLayout<sockaddr_un>.size)
        let connectable = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) } } == 0
        if connectable {
            close(fd)
            throw SystemError.message("\(path) is in use by another process")
        }
        let fresh = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        close(fd)
        guard fresh >= 0 else { throw SystemError.call("socket", errno) }
        unlink(path)
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fresh, $0, size) } }
        guard rc == 0 else {
            let err = errno
            close(fresh)
            throw SystemError.call("bind \(path)", err)
        }
        chmod(path, mode)
        guard listen(fresh, CInt(backlog)) == 0 else {
            let err = errno
            close(fresh)
            throw SystemError.call("listen \(path)", err)
        }
        return fresh
    }

    /// Whether address:port could be bound now (for `check-config`).
    public static func probeAvailable(address: String, port: Int) -> String? {
        do {
            let fd = try bind(address: address, port: port, backlog: 1)
            close(fd)
            return nil
        } catch {
            return "\(error)"
        }
    }
}
