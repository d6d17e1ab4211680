#!/usr/bin/env python3
"""A recording TCP proxy for seeding corelog's fuzz corpora.

Sits between clients and one broker listener and forwards bytes both ways
unchanged, while it cuts each direction into frames and writes every frame
to a file:

  kafka mode (client listener): a frame is a 4-byte big-endian size, then
  the request or response.
    OUT/requests/<key>-<version>-<sha1>.bin   the request as it follows its
                                              size prefix (the `request`
                                              target's input format)
    OUT/responses/<key>-<version>-<sha1>.bin  [api key i16][version i16] and
                                              the response as it follows its
                                              size prefix (the
                                              `peer_response` target's format)
  The key and version of a response come from the request with the same
  correlation id on the same connection.

  controller mode (corelog's CONTROLLER listener): a frame is
  [len u32][kind u8][body].
    OUT/controller/<kind>-<sha1>.bin          [kind u8] and the body

Identical frames are written once; at most --per-kind files are kept for
each (direction, key, version). Standard library only.

  proxy.py --listen 19092 --target 127.0.0.1:9092 --out DIR [--mode kafka]
"""

import argparse
import hashlib
import os
import socket
import struct
import sys
import threading

lock = threading.Lock()
counts = {}


def save(out, sub, stem, data, per_kind):
    digest = hashlib.sha1(data).hexdigest()[:16]
    directory = os.path.join(out, sub)
    path = os.path.join(directory, f"{stem}-{digest}.bin")
    with lock:
        key = (sub, stem)
        if counts.get(key, 0) >= per_kind or os.path.exists(path):
            return
        counts[key] = counts.get(key, 0) + 1
    os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class Frames:
    """Accumulates a byte stream and yields whole frames."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 4:
            (size,) = struct.unpack(">I", self.buf[:4])
            if size > 128 * 1024 * 1024:
                # Not a frame stream we understand: stop recording it.
                self.buf.clear()
                return
            if len(self.buf) < 4 + size:
                return
            frame = bytes(self.buf[4 : 4 + size])
            del self.buf[: 4 + size]
            yield frame


def pump(src, dst, on_frame, frames):
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            # Record before forwarding, so a response never overtakes the
            # request it answers in the correlation table.
            for frame in frames.feed(data):
                try:
                    on_frame(frame)
                except Exception as e:  # recording must never break traffic
                    print(f"proxy: cannot record a frame: {e}", file=sys.stderr)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_kafka(client, upstream, args):
    pending = {}

    def on_request(frame):
        if len(frame) < 8:
            return
        key, version, correlation = struct.unpack(">hhi", frame[:8])
        with lock:
            pending[correlation] = (key, version)
        save(args.out, "requests", f"{key}-{version}", frame, args.per_kind)

    def on_response(frame):
        if len(frame) < 4:
            return
        (correlation,) = struct.unpack(">i", frame[:4])
        with lock:
            found = pending.pop(correlation, None)
        if found is None:
            return
        key, version = found
        data = struct.pack(">hh", key, version) + frame
        save(args.out, "responses", f"{key}-{version}", data, args.per_kind)

    start(client, upstream, on_request, on_response)


def serve_controller(client, upstream, args):
    def on_frame(frame):
        if frame:
            save(args.out, "controller", f"{frame[0]}", frame, args.per_kind)

    start(client, upstream, on_frame, on_frame)


def start(client, upstream, on_up, on_down):
    a = threading.Thread(target=pump, args=(client, upstream, on_up, Frames()), daemon=True)
    b = threading.Thread(target=pump, args=(upstream, client, on_down, Frames()), daemon=True)
    a.start()
    b.start()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--target", required=True, help="host:port of the broker listener")
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["kafka", "controller"], default="kafka")
    p.add_argument("--per-kind", type=int, default=200)
    args = p.parse_args()
    host, port = args.target.rsplit(":", 1)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.listen))
    listener.listen(128)
    serve = serve_kafka if args.mode == "kafka" else serve_controller
    print(f"proxy: {args.mode} 127.0.0.1:{args.listen} -> {args.target}", flush=True)
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
            upstream.settimeout(None)
        except OSError as e:
            print(f"proxy: cannot reach {args.target}: {e}", file=sys.stderr)
            client.close()
            continue
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        serve(client, upstream, args)


if __name__ == "__main__":
    main()
