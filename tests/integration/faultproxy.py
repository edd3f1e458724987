"""A loopback TCP proxy that breaks connections on command: what a test puts
between vectord and PostgreSQL to make the connection fail at a chosen point
(mid-handshake, mid-query, mid-result, while idle) without a mock database.

    proxy = FaultProxy(pg_port)           # listens on 127.0.0.1:proxy.port
    proxy.plan = [0, 300, None]           # cut connection 1 at once, 2 after 300
                                          # bytes from the server, 3 never
    proxy.plans["vectord backfill"] = [0] # the same for the connections whose
                                          # start-up names that application_name
    proxy.cut_after(5000)                 # live connections: 5,000 more bytes
    proxy.cut_all()                       # live connections: now
    proxy.stall(True)                     # stop forwarding (and accepting) data

Budgets count the bytes the server sends to the client: the handshake, the
results. A connection that reaches its budget is closed on both sides after
that many bytes, so the client sees a message cut in the middle. The proxy
reads each client's start-up message before it picks the budget (so that
plans can follow the application_name), and answers an SSL request itself
with "no" (the server is never asked; that byte is not counted).
"""
import re
import socket
import struct
import threading

SSL_REQUEST = 80877103


class _Conn:
    def __init__(self, client, server, limit, name):
        self.client, self.server, self.limit, self.name = client, server, limit, name
        self.sent = 0  # server -> client bytes forwarded
        self.closed = False

    def close(self):
        if self.closed:
            return
        self.closed = True
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FaultProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.plan = []  # budgets of the next accepted connections (None = no limit)
        self.plans = {}  # application_name -> budgets of its next connections (before plan)
        self.accepted = 0
        self.trace = []  # (connection number, application_name, server bytes so far) after each read
        self.cuts = []  # (application_name, budget) of each connection cut at its budget
        self._live = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def dsn(self, dsn):
        """dsn with its port replaced by the proxy's."""
        return re.sub(r"port=\d+", f"port={self.port}", dsn)

    def _accept(self):
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._start, args=(client,), daemon=True).start()

    @staticmethod
    def _read_message(sock):
        """A start-up-phase message (length-prefixed, no type byte), or None."""
        head = b""
        while len(head) < 4:
            part = sock.recv(4 - len(head))
            if not part:
                return None
            head += part
        n = struct.unpack("!I", head)[0]
        body = b""
        while len(body) < n - 4:
            part = sock.recv(n - 4 - len(body))
            if not part:
                return None
            body += part
        return head + body

    def _start(self, client):
        try:
            self._flowing.wait()
            startup = self._read_message(client)
            if startup and len(startup) == 8 and struct.unpack("!I", startup[4:])[0] == SSL_REQUEST:
                client.sendall(b"N")
                startup = self._read_message(client)
        except OSError:
            startup = None
        if not startup:
            client.close()
            return
        m = re.search(rb"application_name\x00([^\x00]*)\x00", startup)
        name = m.group(1).decode() if m else ""
        with self._lock:
            self.accepted += 1
            n = self.accepted
            plan = self.plans[name] if name in self.plans else self.plan
            limit = plan.pop(0) if plan else None
        if limit == 0:
            with self._lock:
                self.cuts.append((name, 0))
            client.close()
            return
        try:
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
            server.sendall(startup)
        except OSError:
            client.close()
            return
        c = _Conn(client, server, limit, name)
        with self._lock:
            self._live.append(c)
        threading.Thread(target=self._pump, args=(c, client, server, None), daemon=True).start()
        self._pump(c, server, client, n)

    def _pump(self, c, src, dst, number):
        """Copies src to dst; number set = the server side, whose bytes count."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                if number is not None:
                    if c.limit is not None and c.sent + len(data) >= c.limit:
                        dst.sendall(data[:max(c.limit - c.sent, 0)])
                        c.sent = c.limit
                        with self._lock:
                            self.cuts.append((c.name, c.limit))
                        break
                    c.sent += len(data)
                    self.trace.append((number, c.name, c.sent))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            c.close()
            with self._lock:
                if c in self._live:
                    self._live.remove(c)

    def cut_after(self, nbytes):
        """Each live connection is cut after nbytes more from the server."""
        with self._lock:
            for c in self._live:
                c.limit = c.sent + nbytes

    def cut_all(self):
        with self._lock:
            live = list(self._live)
        for c in live:
            c.close()

    def stall(self, on):
        """on: data stops flowing both ways (connections stay open)."""
        if on:
            self._flowing.clear()
        else:
            self._flowing.set()

    def close(self):
        self._stopped = True
        self._flowing.set()
        self.listener.close()
        self.cut_all()
