#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension String {
    /// Whether `needle` occurs in this string, compared byte for byte in UTF-8 (no canonical
    /// equivalence: both sides should be normalised the same way). Foundation's `contains`
    /// converts both to UTF-16 first, which on a large text part cost more than the filter.
    public func containsUTF8(_ needle: String) -> Bool {
        if needle.isEmpty { return true }
        var haystack = self, needle = needle
        return haystack.withUTF8 { h in
            needle.withUTF8 { n in
                guard let hb = h.baseAddress, let nb = n.baseAddress, h.count >= n.count else { return false }
                // memchr to each candidate first byte, memcmp the rest (memmem is a GNU extension
                // Swift's Glibc does not import).
                let last = h.count - n.count
                var i = 0
                while i <= last {
                    guard let hit = memchr(hb + i, Int32(n[0]), last - i + 1) else { return false }
                    let at = UnsafeRawPointer(hb).distance(to: UnsafeRawPointer(hit))
                    if memcmp(hb + at, nb, n.count) == 0 { return true }
                    i = at + 1
                }
                return false
            }
        }
    }
}
