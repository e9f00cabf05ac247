import Foundation
import PluginAPI

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
