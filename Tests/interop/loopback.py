"""A receiver on 127.0.0.1 for the interop scripts: it keeps every delivery it gets (path, lower-cased headers, body)
and answers 200, or 500 on the path /fail."""
import http.server
import threading

received = []
lock = threading.Condition()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with lock:
            received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            lock.notify_all()
        self.send_response(500 if self.path == "/fail" else 200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def start():
    """Starts the receiver in a thread; returns its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"
