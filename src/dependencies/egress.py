# The download step's only way out (src/dependencies/egress.rs).
#
#   egress.py proxy SOCKET [HOST:PORT | pip-default]...
#       An HTTP CONNECT proxy on a unix socket, run with the host's network:
#       it opens tunnels to the listed HOST:PORT pairs and to nothing else
#       ("pip-default": the hosts of pip's own default index, read from pip).
#       Every decision is one line on stdout.
#   egress.py forward PORT SOCKET
#       In the download container (no network but its loopback): listens on
#       127.0.0.1:PORT and joins each connection to SOCKET, so pip's
#       `--proxy http://127.0.0.1:PORT` reaches the proxy.
import asyncio
import os
import sys

HEAD_LIMIT = 8192


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


def pip_default_hosts():
    sys.path.insert(0, "/opt/te/pip")  # the runner image's pip, unpacked
    from pip._internal.models.index import PyPI

    return [f"{PyPI.netloc}:443", f"{PyPI.file_storage_domain}:443"]


def say(line):
    print(f"te-egress: {line}", flush=True)


async def tunnel(allowed, reader, writer):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    request = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request.split()
    target = parts[1].lower() if len(parts) == 3 else "?"
    if len(parts) != 3 or parts[0] != "CONNECT" or target not in allowed:
        say(f"refused {request[:200]!r}")
        writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    host, _, port = target.rpartition(":")
    try:
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port)), 30
        )
    except (OSError, asyncio.TimeoutError) as err:
        say(f"could not reach {target}: {err}")
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    say(f"allowed {target}")
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await writer.drain()
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def proxy(socket_path, targets):
    allowed = set()
    for target in targets:
        allowed.update(pip_default_hosts() if target == "pip-default" else [target.lower()])
    default = pip_default_hosts()
    if default[0] in allowed:
        # pip's default index named by its URL: its files live on a host of their own
        allowed.update(default)
    say("admits " + " ".join(sorted(allowed)))
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    server = await asyncio.start_unix_server(
        lambda r, w: tunnel(allowed, r, w), socket_path, limit=HEAD_LIMIT
    )
    os.chmod(socket_path, 0o666)
    say("ready")
    async with server:
        await server.serve_forever()


async def forward(port, socket_path):
    async def join(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(join, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "proxy":
        asyncio.run(proxy(sys.argv[2], sys.argv[3:]))
    else:
        asyncio.run(forward(int(sys.argv[2]), sys.argv[3]))
