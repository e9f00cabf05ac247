import Foundation
import Mustache

/// A domain's look: product name, colours, logo, footer and extra links. `brand.json` in the
/// domain's folder of the `brands` directory; anything missing comes from the default brand.
struct Brand: Sendable, Codable, Equatable {
    struct Link: Sendable, Codable, Equatable {
        var label: String
        var url: String
    }

    var product: String?
    /// CSS colours, `#rgb` or `#rrggbb` only (anything else is ignored: brand.css is served
    /// from these and must not carry CSS of the file's choosing).
    var primaryColor: String?
    var accentColor: String?
    var footer: String?
    var links: [Link]?
    var defaultLanguage: String?
    /// A file in the brand's folder (PNG, SVG or JPEG), served at /brand/logo.
    var logo: String?

    static let standard = Brand(product: "Postern Mail", primaryColor: "#1d4f91", accentColor: "#e8eef7", footer: nil, links: [],
                                defaultLanguage: nil, logo: nil)

    static func isSafeColor(_ s: String?) -> Bool {
        guard let s, s.hasPrefix("#"), s.count == 4 || s.count == 7 else { return false }
        return s.dropFirst().allSatisfy { $0.isHexDigit }
    }
}

/// Renders pages from Mustache templates: the built-in set (Resources/templates), with a
/// brand's own templates of the same names taking their place, and the strings of the user's
/// language (Resources/locales/LANG.json, English underneath for any missing key).
final class PageRenderer: Sendable {
    static let languages = ["en", "de", "fr", "ja"]
    let defaultLanguage: String
    let brandsDirectory: String?
    private let standardLibrary: MustacheLibrary
    private let brandLibraries: [String: MustacheLibrary]
    let brands: [String: Brand]
    private let catalogs: [String: [String: String]]
    let resources: URL
    /// Whether a directory plugin answers white-pages searches (the top bar links the
    /// Directory page then); asked at each render, since plugins register after the webmail.
    let hasDirectory: @Sendable () -> Bool

    init(brandsDirectory: String?, defaultLanguage: String, hasDirectory: @escaping @Sendable () -> Bool = { false }) throws {
        self.hasDirectory = hasDirectory
        guard let resources = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            throw WebmailError.missingResources
        }
        self.resources = resources
        self.defaultLanguage = Self.languages.contains(defaultLanguage) ? defaultLanguage : "en"
        self.brandsDirectory = brandsDirectory
        var standard = MustacheLibrary()
        try Self.register(directory: resources.appendingPathComponent("templates").path, into: &standard)
        standardLibrary = standard
        var catalogs: [String: [String: String]] = [:]
        for language in Self.languages {
            let url = resources.appendingPathComponent("locales/\(language).json")
            catalogs[language] = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: url))
        }
        let english = catalogs["en"] ?? [:]
        for (language, strings) in catalogs where language != "en" {
            catalogs[language] = english.merging(strings) { _, own in own }
        }
        self.catalogs = catalogs
        var brands: [String: Brand] = [:]
        var libraries: [String: MustacheLibrary] = [:]
        if let brandsDirectory {
            for domain in (try? FileManager.default.contentsOfDirectory(atPath: brandsDirectory)) ?? [] where !domain.hasPrefix(".") {
                let folder = brandsDirectory + "/" + domain
                if let data = FileManager.default.contents(atPath: folder + "/brand.json") {
                    do {
                        brands[domain.lowercased()] = try JSONDecoder().decode(Brand.self, from: data)
                    } catch {
                        throw WebmailError.badBrand(folder + "/brand.json", "\(error)")
                    }
                }
                let templates = folder + "/templates"
                if FileManager.default.fileExists(atPath: templates) {
                    var library = standard
                    try Self.register(directory: templates, into: &library)
                    libraries[domain.lowercased()] = library
                }
            }
        }
        self.brands = brands
        brandLibraries = libraries
    }

    private static func register(directory: String, into library: inout MustacheLibrary) throws {
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() where file.hasSuffix(".mustache") {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            do {
                try library.register(text, named: String(file.dropLast(".mustache".count)))
            } catch {
                throw WebmailError.badTemplate(directory + "/" + file, "\(error)")
            }
        }
    }

    /// The brand of a domain (the login domain, or before login the host name and its parents).
    func brandKey(for domain: String?) -> String? {
        guard var name = domain?.lowercased() else { return nil }
        while true {
            if brands[name] != nil || brandLibraries[name] != nil { return name }
            guard let dot = name.firstIndex(of: ".") else { return nil }
            name = String(name[name.index(after: dot)...])
        }
    }

    func brand(_ key: String?) -> Brand {
        guard let key, let own = brands[key] else { return .standard }
        let s = Brand.standard
        return Brand(product: own.product ?? s.product,
                     primaryColor: Brand.isSafeColor(own.primaryColor) ? own.primaryColor : s.primaryColor,
                     accentColor: Brand.isSafeColor(own.accentColor) ? own.accentColor : s.accentColor,
                     footer: own.footer, links: own.links ?? [], defaultLanguage: own.defaultLanguage, logo: own.logo)
    }

    func language(preferred: String?, brand key: String?, acceptLanguage: String?) -> String {
        if let preferred, Self.languages.contains(preferred) { return preferred }
        for tag in (acceptLanguage ?? "").split(separator: ",") {
            let code = tag.split(separator: ";")[0].trimmingCharacters(in: .whitespaces).prefix(2).lowercased()
            if Self.languages.contains(code) { return code }
        }
        if let own = brand(key).defaultLanguage, Self.languages.contains(own) { return own }
        return defaultLanguage
    }

    func strings(_ language: String) -> [String: String] {
        catalogs[language] ?? catalogs["en"] ?? [:]
    }

    /// Renders `template` with `data` plus `t` (the strings), `brand`, `lang` and `brandKey`.
    func render(_ template: String, brand key: String?, language: String, _ data: [String: Any]) -> String {
        let brand = self.brand(key)
        var context = data
        context["t"] = strings(language)
        context["lang"] = language
        context["brandKey"] = key ?? ""
        context["hasDirectory"] = hasDirectory()
        context["brand"] = [
            "product": brand.product ?? "Postern Mail",
            "footer": brand.footer ?? "",
            "hasLogo": brand.logo != nil,
            "links": (brand.links ?? []).filter { $0.url.hasPrefix("https://") || $0.url.hasPrefix("http://") }
                .map { ["label": $0.label, "url": $0.url] },
        ] as [String: Any]
        let library = key.flatMap { brandLibraries[$0] } ?? standardLibrary
        return library.render(context, withTemplate: template) ?? "template \(template) missing"
    }
}

enum WebmailError: Error, CustomStringConvertible {
    case missingResources
    case badBrand(String, String)
    case badTemplate(String, String)

    var description: String {
        switch self {
        case .missingResources: return "the webmail's resources (Postern_PosternWebmailCore.resources) are not beside the postern binary"
        case .badBrand(let file, let why): return "\(file): \(why)"
        case .badTemplate(let file, let why): return "\(file): \(why)"
        }
    }
}
