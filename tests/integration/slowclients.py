"""Slow HTTP clients for the slow-client tests and bench/soak.py: many
sockets driven by one thread with a selector.

  idle     connect, send nothing; reconnect when the server closes it.
  trickle  send a valid search request one byte at a time (one byte per
           `interval` seconds per socket), read the answer, start over.
  stalled  send the headers and part of a body, then nothing.

Counts what happened: connects, answers by status, closes by the server.
"""
import errno
import re
import selectors
import socket
import threading
import time


class SlowClients:
    def __init__(self, port, n, mode, request=b"", interval=0.05):
        self.port, self.n, self.mode, self.request, self.interval = port, n, mode, request, interval
        self.sel = selectors.DefaultSelector()
        self.stop_flag = threading.Event()
        self.connects = self.closed_by_server = self.connect_errors = 0
        self.statuses = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=30)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        except OSError:
            self.connect_errors += 1
            s.close()
            return
        self.connects += 1
        state = {"sent": 0, "recv": b"", "next": time.time()}
        if self.mode == "stalled":
            head, _, body = self.request.partition(b"\r\n\r\n")
            state["limit"] = len(head) + 4 + len(body) // 2
        else:
            state["limit"] = len(self.request) if self.mode == "trickle" else 0
        self.sel.register(s, selectors.EVENT_READ, state)

    def _run(self):
        for _ in range(self.n):
            self._open()
        while not self.stop_flag.is_set():
            now = time.time()
            for key, _ in self.sel.select(timeout=min(self.interval, 0.05)):
                self._read(key)
            for key in list(self.sel.get_map().values()):
                st = key.data
                if st["sent"] < st["limit"] and now >= st["next"]:
                    step = 1 if self.mode == "trickle" else st["limit"] - st["sent"]
                    try:
                        st["sent"] += key.fileobj.send(self.request[st["sent"]:st["sent"] + step])
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._drop(key)
                        continue
                    st["next"] = now + self.interval

    def _drop(self, key):
        self.sel.unregister(key.fileobj)
        key.fileobj.close()
        if not self.stop_flag.is_set():
            self._open()

    def _read(self, key):
        st = key.data
        try:
            data = key.fileobj.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno not in (errno.ECONNRESET, errno.ENOTCONN):
                raise
            data = b""
        if not data:
            self.closed_by_server += 1
            self._drop(key)
            return
        st["recv"] += data
        head, sep, body = st["recv"].partition(b"\r\n\r\n")
        m = re.search(rb"content-length: *(\d+)", head, re.I)
        if sep and m and len(body) >= int(m.group(1)):
            status = int(head.split(b" ", 2)[1])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            st.update(sent=0, recv=b"", next=time.time())  # keep-alive: the next request
