#!/usr/bin/env python3
"""A misbehaving S3 endpoint for tests/tools/test_s3.c, on 127.0.0.1 only.

    s3_misbehave.py MODE PORTFILE LOGFILE

It answers just enough of S3 for 'dbtool backup --repo s3://...' to reach
the upload of a part (catalog GET, listing, CreateMultipartUpload, PUT of
objects, CompleteMultipartUpload, AbortMultipartUpload), keeps objects in
memory, and misbehaves on UploadPart as MODE says:

    ok     answer 200
    stall  read the request line and headers, then never answer
    stallall  the same, and AbortMultipartUpload (DELETE) never answered either
    drip   read the part, then send the answer one byte per second
    reset  read part of the body, then reset the connection (RST), every time
    500    answer 500 InternalError to the first part, 200 after
    403    answer 403 AccessDenied

It binds port 0, writes the port to PORTFILE (renamed into place, so a
reader never sees half of it) and appends "METHOD PATH" of every request,
and "part-start" when a part's headers arrived, to LOGFILE.
"""
import http.server
import os
import socket
import struct
import sys
import threading
import time

MODE, PORTFILE, LOGFILE = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
objects = {}
parts_seen = [0]


def log(line):
    with lock:
        with open(LOGFILE, "a") as f:
            f.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def answer(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, name, msg):
        self.answer(code, ("<Error><Code>%s</Code><Message>%s</Message></Error>" % (name, msg)).encode())

    def key(self):
        return self.path.split("?", 1)[0]

    def do_GET(self):
        log("GET " + self.path)
        if "list-type=2" in self.path:
            self.answer(200, b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
        elif self.key() in objects:
            self.answer(200, objects[self.key()])
        else:
            self.error(404, "NoSuchKey", "no such key")

    def do_HEAD(self):
        log("HEAD " + self.path)
        if self.key() in objects:
            self.answer(200, objects[self.key()])
        else:
            self.answer(404)

    def do_DELETE(self):
        log("DELETE " + self.path)
        if MODE == "stallall":
            while True:
                time.sleep(3600)
        objects.pop(self.key(), None)
        self.answer(204)

    def do_POST(self):
        log("POST " + self.path)
        self.body()
        if self.path.endswith("?uploads"):
            self.answer(200, b"<InitiateMultipartUploadResult><UploadId>up+1/x=</UploadId>"
                             b"</InitiateMultipartUploadResult>")
        else:
            objects[self.key()] = b"(multipart)"
            self.answer(200, b"<CompleteMultipartUploadResult></CompleteMultipartUploadResult>")

    def do_PUT(self):
        log("PUT " + self.path)
        if "partNumber=" not in self.path:
            objects[self.key()] = self.body()
            self.answer(200, headers={"ETag": '"obj"'})
            return
        log("part-start")
        with lock:
            parts_seen[0] += 1
            nth = parts_seen[0]
        if MODE in ("stall", "stallall"):
            while True:
                time.sleep(3600)
        if MODE == "reset":
            self.rfile.read(min(1000, int(self.headers.get("Content-Length", "0"))))
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        self.body()
        if MODE == "403":
            self.error(403, "AccessDenied", "Access Denied")
        elif MODE == "500" and nth == 1:
            self.error(500, "InternalError", "We encountered an internal error. Please try again.")
        elif MODE == "drip":
            raw = b'HTTP/1.1 200 OK\r\nETag: "p"\r\nContent-Length: 0\r\n\r\n'
            for b in raw:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(1)
        else:
            self.answer(200, headers={"ETag": '"part%d"' % nth})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
tmp = PORTFILE + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, PORTFILE)
srv.serve_forever()
