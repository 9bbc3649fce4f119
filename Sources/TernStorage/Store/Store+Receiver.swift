import SQLKit
import TernCore

/// A change to how an endpoint's receiver is reached: its authentication, its TLS material, its kind of signature.
/// Nil members stay as they are; `.some(nil)` removes.
public struct ReceiverChange: Sendable {
    public var auth: EndpointAuth??
    public var tls: EndpointTLS??
    public var signing: EndpointSigning?

    public init(auth: EndpointAuth?? = nil, tls: EndpointTLS?? = nil, signing: EndpointSigning? = nil) {
        self.auth = auth
        self.tls = tls
        self.signing = signing
    }
}

/// Receiver authentication and TLS are stored beside the signing secret: the secrets sealed with the same key
/// (`SecretBox`), what may be shown in plain columns, so that reading an endpoint never opens a secret.
extension Store {
    /// Applies `change` to the endpoint's row (and to `endpoint`, as shown). A new kind of signature replaces the
    /// secret with one of that kind; the old one keeps signing beside it for 24 hours, as after a rotation.
    func writeReceiver(_ endpoint: inout Endpoint, _ change: ReceiverChange, _ sql: any SQLDatabase) async throws {
        if let auth = change.auth {
            let sealed = try auth.map { try self.secretBox.seal(JSONColumn.encode($0)) }
            try await sql.raw(
                """
                UPDATE endpoints SET auth = \(bind: sealed), auth_shown = \(bind: auth.map { JSONColumn.encode($0.shown) })
                WHERE id = \(bind: endpoint.id)
                """
            ).run()
            endpoint.auth = auth?.shown
        }
        if let tls = change.tls {
            let tls = tls.flatMap { $0.isEmpty ? nil : $0 }
            let sealedKey = try tls?.clientKeyPEM.map { try self.secretBox.seal($0) }
            try await sql.raw(
                """
                UPDATE endpoints SET tls_client_certificate = \(bind: tls?.clientCertificatePEM), tls_client_key = \(bind: sealedKey),
                tls_ca_bundle = \(bind: tls?.caBundlePEM) WHERE id = \(bind: endpoint.id)
                """
            ).run()
            endpoint.tls = tls?.shown
        }
        if let signing = change.signing, signing != endpoint.signing {
            let secret = EndpointSecret.generate(signing)
            _ = try await Self.replaceSecret(
                endpointID: endpoint.id, sealed: try self.secretBox.seal(secret), publicKey: EndpointSecret.publicKey(secret), sql)
            endpoint.publicKey = EndpointSecret.publicKey(secret)
        }
    }

    /// What an endpoint row shows of its receiver settings.
    static func receiverShown(_ row: any SQLRow, into endpoint: inout Endpoint) throws {
        endpoint.auth = try JSONColumn.decode(JSONValue.self, (try? row.optionalString("auth_shown")) ?? nil)
        let certificate = (try? row.optionalString("tls_client_certificate")) ?? nil
        let key = (try? row.optionalString("tls_client_key")) ?? nil
        let bundle = (try? row.optionalString("tls_ca_bundle")) ?? nil
        if certificate != nil || key != nil || bundle != nil {
            endpoint.tls = EndpointTLS(clientCertificatePEM: certificate, clientKeyPEM: key, caBundlePEM: bundle).shown
        }
        endpoint.publicKey = (try? row.optionalString("public_key")) ?? nil
    }
}
