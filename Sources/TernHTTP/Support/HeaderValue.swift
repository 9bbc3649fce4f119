extension StringProtocol {
    /// The text without the spaces and tabs around it (HTTP's optional whitespace), without Foundation's
    /// character-set trimming, which bridges through `NSString` on every call.
    func trimmingHTTPWhitespace() -> String {
        let text = Substring(self)
        let isText = { (byte: UInt8) in byte != 0x20 && byte != 0x09 }
        guard let first = text.utf8.firstIndex(where: isText), let last = text.utf8.lastIndex(where: isText) else { return "" }
        return String(text[first...last])
    }
}
