import Foundation

extension HostProfileRenderer {
    /// Where Windows Setup picks up an answer file from an applied image: `%WINDIR%\Panther\unattend.xml`.
    public static let windowsUnattendPath = "/Windows/Panther/unattend.xml"
    static let unattendNamespace = "urn:schemas-microsoft-com:unattend"
    static let wcmNamespace = "http://schemas.microsoft.com/WMIConfig/2002/State"
    static let xsiNamespace = "http://www.w3.org/2001/XMLSchema-instance"

    /// The Windows answer file, `specialize` pass, with three components:
    /// - `Microsoft-Windows-Shell-Setup`: `ComputerName`;
    /// - `Microsoft-Windows-TCPIP`: one `Interface` per interface, `Identifier` = MAC as
    ///   `AA-BB-CC-DD-EE-FF`, `Ipv4Settings`/`Ipv6Settings` (`DhcpEnabled`, `RouterDiscoveryEnabled`),
    ///   `UnicastIpAddresses` (CIDR) and `Routes` (`Prefix`, `NextHopAddress`, `Metric`, a unique
    ///   `Identifier`; default routes as `0.0.0.0/0` and `::/0`);
    /// - `Microsoft-Windows-DNS-Client`: `DNSSuffixSearchOrder`, `DNSDomain`, and on the primary
    ///   interface `DNSServerSearchOrder`.
    ///
    /// This follows the source documents, which edited `ComputerName` and the network adapter
    /// sections of the Windows answer file; unattend.xml is that file's current form.
    /// - Throws: ``HostProfileError/unrenderable(format:reason:)`` when the computer name is not a valid
    ///   Windows name (1–15 characters of letters, digits and hyphens, not all digits).
    public static func windowsUnattend(_ profile: HostProfile, options: RenderOptions = RenderOptions()) throws(HostProfileError)
        -> RenderedFile
    {
        let computerName = options.windowsComputerName ?? profile.hostname
        guard (1...15).contains(computerName.count),
            computerName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
            !computerName.allSatisfy(\.isNumber)
        else {
            throw .unrenderable(
                format: "windows",
                reason: "ComputerName '\(computerName)' must be 1-15 letters, digits or hyphens and not all digits; "
                    + "set RenderOptions.windowsComputerName")
        }
        var x = XMLWriter()
        x.line("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        x.line("<!--\(String(header(profile, comment: "").dropLast()).replacingOccurrences("--", with: "- -")) -->")
        x.open("unattend", ["xmlns": unattendNamespace, "xmlns:wcm": wcmNamespace, "xmlns:xsi": xsiNamespace])
        x.open("settings", ["pass": "specialize"])

        x.open("component", component("Microsoft-Windows-Shell-Setup", options))
        x.element("ComputerName", computerName)
        x.close()

        x.open("component", component("Microsoft-Windows-TCPIP", options))
        x.open("Interfaces")
        var routeID = 0
        for i in profile.interfaces {
            x.open("Interface", ["wcm:action": "add"])
            x.open("Ipv4Settings")
            x.element("DhcpEnabled", String(i.dhcp4))
            x.element("RouterDiscoveryEnabled", "false")
            x.close()
            x.open("Ipv6Settings")
            x.element("DhcpEnabled", String(i.dhcp6))
            x.element("RouterDiscoveryEnabled", String(i.acceptRA))
            x.close()
            x.element("Identifier", i.mac.windowsForm)
            if !i.addresses.isEmpty {
                x.open("UnicastIpAddresses")
                for (n, a) in i.addresses.enumerated() {
                    x.element("IpAddress", a.description, ["wcm:action": "add", "wcm:keyValue": String(n + 1)])
                }
                x.close()
            }
            let routes = profile.routes(for: i)
            if !routes.isEmpty {
                x.open("Routes")
                for r in routes {
                    x.open("Route", ["wcm:action": "add"])
                    x.element("Identifier", String(routeID))
                    routeID += 1
                    if let m = r.metric { x.element("Metric", String(m)) }
                    // An on-link route has the unspecified address as its next hop.
                    x.element("NextHopAddress", r.gateway?.description ?? (r.family == .ipv4 ? "0.0.0.0" : "::"))
                    x.element("Prefix", r.destination.description)
                    x.close()
                }
                x.close()
            }
            x.close()
        }
        x.close()
        x.close()

        x.open("component", component("Microsoft-Windows-DNS-Client", options))
        let dnsInterfaces = profile.interfaces.compactMap { i in staticDNS(profile, for: i).map { (i, $0) } }
        if let domain = profile.domain { x.element("DNSDomain", domain) }
        if !profile.dns.searchDomains.isEmpty {
            x.open("DNSSuffixSearchOrder")
            for (n, d) in profile.dns.searchDomains.enumerated() {
                x.element("DomainName", d, ["wcm:action": "add", "wcm:keyValue": String(n + 1)])
            }
            x.close()
        }
        if !dnsInterfaces.isEmpty {
            x.open("Interfaces")
            for (i, dns) in dnsInterfaces {
                x.open("Interface", ["wcm:action": "add"])
                x.element("Identifier", i.mac.windowsForm)
                if let domain = profile.domain { x.element("DNSDomain", domain) }
                x.element("EnableAdapterDomainNameRegistration", "false")
                x.element("DisableDynamicUpdate", "true")
                if !dns.nameservers.isEmpty {
                    x.open("DNSServerSearchOrder")
                    for (n, ns) in dns.nameservers.enumerated() {
                        x.element("IpAddress", ns.description, ["wcm:action": "add", "wcm:keyValue": String(n + 1)])
                    }
                    x.close()
                }
                x.close()
            }
            x.close()
        }
        x.close()

        x.close()
        x.close()
        return RenderedFile(path: windowsUnattendPath, text: x.text, mode: 0o644)
    }

    static func component(_ name: String, _ options: RenderOptions) -> KeyValuePairs<String, String> {
        [
            "name": name, "processorArchitecture": options.windowsArchitecture, "publicKeyToken": "31bf3856ad364e35",
            "language": "neutral", "versionScope": "nonSxS",
        ]
    }

    /// Security files for a Windows target, where Windows' OpenSSH server and Shoal look for them:
    /// SSH host keys in `/ProgramData/ssh`, root's authorized keys as
    /// `/ProgramData/ssh/administrators_authorized_keys`, `/home/NAME`'s as
    /// `/Users/NAME/.ssh/authorized_keys`, the Shoal TLS files in `/ProgramData/Shoal/tls`.
    public static func windowsSecurityFiles(_ profile: HostProfile, options: RenderOptions = RenderOptions()) -> [RenderedFile] {
        func base(_ path: String) -> String { String(path.split(separator: "/").last ?? "") }
        var out: [RenderedFile] = []
        for key in profile.security.sshHostKeys {
            out.append(RenderedFile(
                path: "/ProgramData/ssh/\(base(key.path))", contents: key.contents, mode: key.path.hasSuffix(".pub") ? 0o644 : 0o600))
        }
        for keys in profile.security.authorizedKeys where base(keys.path) == "authorized_keys" {
            let parts = keys.path.split(separator: "/")
            if keys.path.hasPrefix("/root/") {
                out.append(RenderedFile(path: "/ProgramData/ssh/administrators_authorized_keys", contents: keys.contents, mode: 0o600))
            } else if parts.count == 4, parts[0] == "home" {
                out.append(RenderedFile(path: "/Users/\(parts[1])/.ssh/authorized_keys", contents: keys.contents, mode: 0o600))
            }
        }
        let s = profile.security, p = options.paths
        if let c = s.shoalCertificate { out.append(RenderedFile(path: "/ProgramData/Shoal/tls/\(base(p.shoalCertificatePath))", contents: c.contents, mode: 0o644)) }
        if let k = s.shoalKey { out.append(RenderedFile(path: "/ProgramData/Shoal/tls/\(base(p.shoalKeyPath))", contents: k.contents, mode: 0o600)) }
        if let ca = s.fleetCA { out.append(RenderedFile(path: "/ProgramData/Shoal/tls/\(base(p.fleetCAPath))", contents: ca.contents, mode: 0o644)) }
        return out
    }
}

/// A minimal, indenting XML writer that escapes text and attribute values.
struct XMLWriter {
    private(set) var text = ""
    private var stack: [String] = []

    mutating func line(_ s: String) { text += String(repeating: "  ", count: stack.count) + s + "\n" }

    mutating func open(_ name: String, _ attributes: KeyValuePairs<String, String> = [:]) {
        line("<\(name)\(render(attributes))>")
        stack.append(name)
    }

    mutating func close() { let name = stack.removeLast(); line("</\(name)>") }

    mutating func element(_ name: String, _ value: String, _ attributes: KeyValuePairs<String, String> = [:]) {
        line("<\(name)\(render(attributes))>\(XMLWriter.escape(value))</\(name)>")
    }

    private func render(_ attributes: KeyValuePairs<String, String>) -> String {
        attributes.map { " \($0.key)=\"\(XMLWriter.escape($0.value))\"" }.joined()
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}
