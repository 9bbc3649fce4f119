/// Tern's version, sent in `User-Agent: Tern/<version>`.
public enum TernVersion {
    public static let current = "0.3.0"
}
