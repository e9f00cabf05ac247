import Foundation
import PluginAPI

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
