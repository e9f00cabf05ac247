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
