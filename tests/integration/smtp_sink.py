#!/usr/bin/env python3
"""A small real SMTP server for tests: it speaks RFC 5321 on 127.0.0.1 and
stores what it receives, one JSON file per session in OUTDIR:

    session-NNNN.json  {"commands": [...], "messages": [{"mail_from", "rcpt_tos", "data"}]}

written when the client says QUIT or hangs up. It prints its port on stdout
once it listens, then serves until it is terminated.

    smtp_sink.py OUTDIR [--reject-rcpt ADDR] [--reject-data]
"""
import argparse
import itertools
import json
import os
import socketserver
import sys
import threading

COUNTER = itertools.count(1)
LOCK = threading.Lock()


class Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, line):
        self.wfile.write((line + "\r\n").encode("ascii"))
        self.wfile.flush()

    def handle(self):
        opts = self.server.opts
        commands, messages = [], []
        mail_from, rcpts = None, []
        self.reply("220 tickflow-sink ESMTP ready")
        try:
            while True:
                raw = self.rfile.readline(4096)
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                arg = line[len(verb):].strip()
                commands.append(verb)
                if verb in ("EHLO", "HELO"):
                    if verb == "EHLO":
                        self.reply("250-tickflow-sink")
                        self.reply("250-8BITMIME")
                        self.reply("250 SIZE 1048576")
                    else:
                        self.reply("250 tickflow-sink")
                elif verb == "MAIL":
                    mail_from, rcpts = arg.split(":", 1)[1].strip().split(" ")[0], []
                    self.reply("250 OK")
                elif verb == "RCPT":
                    addr = arg.split(":", 1)[1].strip().split(" ")[0]
                    if opts.reject_rcpt and addr.strip("<>") == opts.reject_rcpt:
                        self.reply("550 5.1.1 no such mailbox")
                    else:
                        rcpts.append(addr)
                        self.reply("250 OK")
                elif verb == "DATA":
                    if mail_from is None or not rcpts:
                        self.reply("503 5.5.1 need MAIL and RCPT first")
                        continue
                    self.reply("354 end with <CRLF>.<CRLF>")
                    data = bytearray()
                    while True:
                        chunk = self.rfile.readline(65536)
                        if not chunk:
                            return
                        if chunk == b".\r\n":
                            break
                        if chunk.startswith(b"."):
                            chunk = chunk[1:]  # undo dot-stuffing
                        data += chunk
                    if opts.reject_data:
                        self.reply("554 5.6.0 message refused")
                    else:
                        messages.append({"mail_from": mail_from, "rcpt_tos": rcpts,
                                         "data": data.decode("utf-8", "replace")})
                        self.reply("250 OK queued")
                    mail_from, rcpts = None, []
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    self.reply("250 OK")
                elif verb == "NOOP":
                    self.reply("250 OK")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    break
                else:
                    self.reply("502 5.5.2 command not implemented")
        except (OSError, ValueError, IndexError):
            pass
        finally:
            self.save(commands, messages)

    def save(self, commands, messages):
        with LOCK:
            n = next(COUNTER)
        path = os.path.join(self.server.outdir, "session-%04d.json" % n)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"commands": commands, "messages": messages}, f)
        os.rename(path + ".tmp", path)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--reject-rcpt")
    ap.add_argument("--reject-data", action="store_true")
    opts = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    srv.opts, srv.outdir = opts, opts.outdir
    # One write (atomic on a pipe), then stdout is not used again.
    os.write(sys.stdout.fileno(), b"%d\n" % srv.server_address[1])
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
